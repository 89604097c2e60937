using System.Text.RegularExpressions;
using HymbaTools.Common;

namespace HymbaTools.Checkpoints;

/// <summary>
/// One repository snapshot in the local HuggingFace cache: the repository id (ORG/NAME), the commit it was
/// downloaded at, and its directory (…/models--ORG--NAME/snapshots/COMMIT, whose files are symlinks into blobs/).
/// </summary>
public sealed partial record HubSnapshot(string RepoId, string Commit, string Directory)
{
    /// <summary>The repository name without its organisation (what a file made from it is called by default).</summary>
    public string Name => RepoId[(RepoId.IndexOf('/', StringComparison.Ordinal) + 1)..];

    /// <summary>
    /// The snapshot a directory is, when its path has the cache's layout (a 40-hex-digit commit directory in
    /// snapshots/ of a models--ORG--NAME folder); else null. Provenance comes from the path itself, so a snapshot
    /// named by its directory is recorded as the same Hub id and commit as one named by its id.
    /// </summary>
    public static HubSnapshot? FromDirectory(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd('/');
        string commit = Path.GetFileName(full);
        string? snapshots = Path.GetDirectoryName(full);
        string? repository = snapshots is null ? null : Path.GetDirectoryName(snapshots);
        if (repository is null || Path.GetFileName(snapshots) != "snapshots" || !HubCache.IsCommitHash(commit)) return null;
        string folder = Path.GetFileName(repository);
        if (!folder.StartsWith(HubCache.ModelFolderPrefix, StringComparison.Ordinal)) return null;
        var parts = folder[HubCache.ModelFolderPrefix.Length..].Split(HubCache.RepoIdSeparator);
        return parts.Length == 2 && HubCache.IsRepoId($"{parts[0]}/{parts[1]}") ? new HubSnapshot($"{parts[0]}/{parts[1]}", commit, full) : null;
    }
}

/// <summary>
/// The local HuggingFace Hub cache, found and read as huggingface_hub finds and reads it (constants.py and
/// snapshot_download with local_files_only): the directory is $HF_HUB_CACHE, else the legacy
/// $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub,
/// with ~ and $VARIABLES expanded as Python's expanduser/expandvars do (a variable set to the empty string counts as
/// set, as os.getenv's default does). A repository ORG/NAME lives in models--ORG--NAME/: refs/REVISION holds the
/// commit a branch or tag name points at, snapshots/COMMIT/ the files, each a symlink into blobs/. A revision is a
/// name in refs/ or a full 40-digit commit hash (huggingface_hub resolves no abbreviated hash offline); the default
/// is main. Nothing is ever downloaded.
/// </summary>
public sealed partial class HubCache
{
    internal const string ModelFolderPrefix = "models--";
    /// <summary>huggingface_hub's REPO_ID_SEPARATOR: not allowed inside a repository id, so the folder name splits unambiguously.</summary>
    internal const string RepoIdSeparator = "--";
    public const string DefaultRevision = "main";

    private readonly Func<string, string?> _environment;

    /// <param name="environment">Looks up an environment variable (null when unset): the process's, or a test's own.</param>
    public HubCache(Func<string, string?> environment)
    {
        _environment = environment;
        (Directory, DirectorySource) = Locate();
    }

    /// <summary>The cache directory (the hub/ folder that holds models--ORG--NAME folders).</summary>
    public string Directory { get; }

    /// <summary>Which setting chose <see cref="Directory"/>, for messages: "HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "~/.cache" ...</summary>
    public string DirectorySource { get; }

    /// <summary>The repository's folder in the cache (whether or not it exists).</summary>
    public string RepositoryFolder(string repoId) => Path.Combine(Directory, ModelFolderPrefix + repoId.Replace("/", RepoIdSeparator, StringComparison.Ordinal));

    private (string Directory, string Source) Locate()
    {
        string home = ExpandUser(Path.Combine("~", ".cache"));
        (string path, string source) = _environment("HF_HOME") is { } hfHome
            ? (hfHome, "HF_HOME")
            : _environment("XDG_CACHE_HOME") is { } xdg ? (Path.Combine(xdg, "huggingface"), "XDG_CACHE_HOME") : (Path.Combine(home, "huggingface"), "~/.cache");
        string hfHomeDirectory = ExpandVariables(ExpandUser(path));
        if (_environment("HF_HUB_CACHE") is { } hub) return (ExpandVariables(ExpandUser(hub)), "HF_HUB_CACHE");
        if (_environment("HUGGINGFACE_HUB_CACHE") is { } legacy) return (ExpandVariables(ExpandUser(legacy)), "HUGGINGFACE_HUB_CACHE");
        return (Path.Combine(hfHomeDirectory, "hub"), source);
    }

    /// <summary>Python's os.path.expanduser for "~" and "~/…" ($HOME, else the account's home); "~user" is left as it is.</summary>
    private string ExpandUser(string path)
    {
        if (path != "~" && !path.StartsWith("~/", StringComparison.Ordinal)) return path;
        string home = (_environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile)).TrimEnd('/');
        string expanded = home + path[1..];
        return expanded.Length == 0 ? "/" : expanded;
    }

    /// <summary>Python's os.path.expandvars: $NAME and ${NAME} replaced when set, left as written when not.</summary>
    private string ExpandVariables(string path) => VariableReference().Replace(path, m =>
    {
        string name = m.Groups[1].Value;
        if (name.StartsWith('{') && name.EndsWith('}')) name = name[1..^1];
        return _environment(name) ?? m.Value;
    });

    [GeneratedRegex(@"\$(\w+|\{[^}]*\})", RegexOptions.CultureInvariant)]
    private static partial Regex VariableReference();

    /// <summary>
    /// A Hub repository id as the Hub accepts one (huggingface_hub's validate_repo_id): ORG/NAME of letters, digits,
    /// '-', '_' and '.', neither starting nor ending with '-' or '.', with no "--" or "..", the name at most 96 characters.
    /// </summary>
    public static bool IsRepoId(string text) =>
        RepoId().IsMatch(text) && !text.Contains("--", StringComparison.Ordinal) && !text.Contains("..", StringComparison.Ordinal)
        && text.Split('/')[1].Length <= 96;

    [GeneratedRegex(@"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?/[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$", RegexOptions.CultureInvariant)]
    private static partial Regex RepoId();

    /// <summary>A full commit hash (huggingface_hub's REGEX_COMMIT_HASH): 40 lower-case hex digits.</summary>
    public static bool IsCommitHash(string text) => text.Length == 40 && text.All(char.IsAsciiHexDigitLower);

    /// <summary>
    /// Splits ORG/NAME[@REVISION]; false when <paramref name="text"/> is not of that form (then it can only be a path).
    /// A revision may contain '/' (refs/pr/1) but no "..", and may not start with '/'.
    /// </summary>
    public static bool TryParse(string text, out string repoId, out string? revision)
    {
        int at = text.IndexOf('@', StringComparison.Ordinal);
        repoId = at < 0 ? text : text[..at];
        revision = at < 0 ? null : text[(at + 1)..];
        if (!IsRepoId(repoId)) return false;
        return revision is null || (revision.Length > 0 && !revision.StartsWith('/') && !revision.Split('/').Any(part => part is "" or "." or ".."));
    }

    /// <summary>
    /// The snapshot of <paramref name="repoId"/> at <paramref name="revision"/> (default main), or an input error
    /// that says where it looked and what would download it. Every file of the snapshot must lead to a blob (a
    /// dangling symlink is a download that did not finish).
    /// </summary>
    public HubSnapshot Resolve(string repoId, string? revision = null)
    {
        string asked = revision is null ? repoId : $"{repoId}@{revision}";
        revision ??= DefaultRevision;
        string folder = RepositoryFolder(repoId);
        string download = $"huggingface-cli download {repoId}{(revision == DefaultRevision ? "" : $" --revision {revision}")}";
        string where = $"{Directory} (from {DirectorySource})";
        if (!System.IO.Directory.Exists(folder))
            throw new InvalidCheckpointException(asked, "", $"no local directory of that name and not in the HuggingFace cache {where}: no {Path.GetFileName(folder)} there; hymba never downloads: fetch it with `{download}`");

        string? commit = null;
        if (IsCommitHash(revision)) commit = revision;
        else if (ReadRef(folder, revision) is { } pointed)
            commit = IsCommitHash(pointed) ? pointed : throw new InvalidCheckpointException(Path.Combine(folder, "refs", revision), "", $"holds '{Shorten(pointed)}', not a commit hash (expected 40 hex digits)");
        if (commit is null)
        {
            string known = Known(folder);
            string hint = revision.Length is >= 5 and < 40 && revision.All(char.IsAsciiHexDigitLower)
                ? "an abbreviated commit hash is not looked up (huggingface_hub resolves only full 40-digit hashes offline); " : "";
            throw new InvalidCheckpointException(asked, "", $"revision '{revision}' is not in the HuggingFace cache {folder} ({hint}{known}); fetch it with `{download}`");
        }
        string snapshot = Path.Combine(folder, "snapshots", commit);
        if (!System.IO.Directory.Exists(snapshot))
            throw new InvalidCheckpointException(asked, "", $"commit {commit} has no snapshot in {Path.Combine(folder, "snapshots")} ({Known(folder)}); fetch it with `{download}`");
        foreach (var entry in new DirectoryInfo(snapshot).EnumerateFiles("*", SearchOption.AllDirectories).Where(f => f.LinkTarget is not null).OrderBy(f => f.FullName, StringComparer.Ordinal))
            if (entry.ResolveLinkTarget(returnFinalTarget: true) is not { Exists: true })
                throw new InvalidCheckpointException(entry.FullName, "", $"links to {entry.LinkTarget}, which is missing (an unfinished download?); fetch it again with `{download}`");
        return new HubSnapshot(repoId, commit, snapshot);
    }

    /// <summary>The commit refs/REVISION names, or null when there is no such ref. Read bounded: a ref is one hash.</summary>
    private static string? ReadRef(string folder, string revision)
    {
        string path = Path.Combine(folder, "refs", revision);
        if (!File.Exists(path)) return null;
        using var stream = File.OpenRead(path);
        var buffer = new byte[128];
        int read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        return System.Text.Encoding.UTF8.GetString(buffer, 0, read).Trim();
    }

    private static string Shorten(string text) => text.Length > 48 ? text[..48] + "…" : text;

    /// <summary>What the cache holds for a repository, for messages: its refs and snapshot commits.</summary>
    private static string Known(string folder)
    {
        string refsDirectory = Path.Combine(folder, "refs"), snapshotsDirectory = Path.Combine(folder, "snapshots");
        var refs = System.IO.Directory.Exists(refsDirectory)
            ? System.IO.Directory.EnumerateFiles(refsDirectory, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(refsDirectory, f)).Order(StringComparer.Ordinal).ToList() : [];
        var commits = System.IO.Directory.Exists(snapshotsDirectory)
            ? System.IO.Directory.EnumerateDirectories(snapshotsDirectory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList() : [];
        return $"cached refs: {(refs.Count == 0 ? "none" : string.Join(", ", refs))}; snapshots: {(commits.Count == 0 ? "none" : string.Join(", ", commits))}";
    }
}
