using System.Security.Cryptography;

namespace HymbaTools.Tests.TestData;

/// <summary>
/// A local HuggingFace cache laid out as huggingface_hub lays it out (hub/models--ORG--NAME/ with blobs/ named by
/// the content's sha256, snapshots/COMMIT/ whose files are relative symlinks into blobs/, refs/NAME holding a commit
/// without a newline), built from fixture directories in a temporary directory.
/// </summary>
public sealed class HubCacheLayout(string hubDirectory)
{
    public string Directory { get; } = hubDirectory;

    public string RepositoryFolder(string repoId) => Path.Combine(Directory, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));

    /// <summary>A commit hash made from a label (any 40 hex digits do: the cache never checks them against content).</summary>
    public static string Commit(string label) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(label)))[..40];

    /// <summary>Adds a snapshot of <paramref name="repoId"/> at <paramref name="commit"/> with every file of <paramref name="source"/>; each ref named points at it.</summary>
    public string AddSnapshot(string repoId, string commit, string source, params string[] refs)
    {
        string repo = RepositoryFolder(repoId);
        string blobs = Path.Combine(repo, "blobs"), snapshot = Path.Combine(repo, "snapshots", commit);
        System.IO.Directory.CreateDirectory(blobs);
        System.IO.Directory.CreateDirectory(snapshot);
        foreach (string file in System.IO.Directory.GetFiles(source).Order(StringComparer.Ordinal))
        {
            string blob = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));
            string blobPath = Path.Combine(blobs, blob);
            if (!File.Exists(blobPath)) File.Copy(file, blobPath);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", blob));
        }
        foreach (string name in refs)
        {
            string refPath = Path.Combine(repo, "refs", name);
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
            File.WriteAllText(refPath, commit);
        }
        return snapshot;
    }

    /// <summary>Environment lookups that point the CLI at this cache (HF_HUB_CACHE), nothing else set.</summary>
    public Func<string, string?> Environment => name => name == "HF_HUB_CACHE" ? Directory : null;
}
