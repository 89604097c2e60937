using System.Text.Json;
using HymbaTools.Formats.Gguf;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>A cache built from the fixtures: hymba-tests/tiny at main (tiny-b, sharded), v1 (tiny-a) and an unnamed commit sharing main's blobs.</summary>
public sealed class HubCacheFixture : IDisposable
{
    private readonly TempDir _dir = new();

    public HubCacheFixture()
    {
        Layout = new HubCacheLayout(Path.Combine(_dir.Path, "hf-home", "hub"));
        Main = Layout.AddSnapshot(RepoId, HubCacheLayout.Commit("main"), Fixtures.TinyB, "main");
        V1 = Layout.AddSnapshot(RepoId, HubCacheLayout.Commit("v1"), Fixtures.TinyA, "v1");
        Unnamed = Layout.AddSnapshot(RepoId, HubCacheLayout.Commit("unnamed"), Fixtures.TinyB);
    }

    public const string RepoId = "hymba-tests/tiny";
    public HubCacheLayout Layout { get; }
    public string Main { get; }
    public string V1 { get; }
    public string Unnamed { get; }
    public string HfHome => Path.GetDirectoryName(Layout.Directory)!;
    public string Root => _dir.Path;

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// Every command that takes a checkpoint takes a Hub id from the local cache: inspect, verify, quantize, export and
/// convert run on ids, read the symlinked blobs (memory-mapped), and record the repository and commit as provenance.
/// In-process runs get the cache location through the CLI's environment lookups; child processes show the real
/// environment variable and the current directory at work.
/// </summary>
public class HubIdTests(HubCacheFixture hub) : IClassFixture<HubCacheFixture>, IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private const string Id = HubCacheFixture.RepoId;
    private CliRunner.Result Run(params string[] args) => CliRunner.RunWith(hub.Layout.Environment, args);
    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement;

    [Fact]
    public void Inspect_resolves_the_default_branch_a_tag_and_a_full_commit()
    {
        foreach (var (argument, snapshot, layers) in new[] { (Id, hub.Main, 6), ($"{Id}@v1", hub.V1, 4), ($"{Id}@{Path.GetFileName(hub.Unnamed)}", hub.Unnamed, 6) })
        {
            var r = Run("inspect", argument, "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            var report = Json(r.Stdout);
            Assert.Equal(snapshot, report.GetProperty("source").GetString());
            Assert.Equal(layers, report.GetProperty("num_layers").GetInt32());
            Assert.Equal(Id, report.GetProperty("hub").GetProperty("repository").GetString());
            Assert.Equal(Path.GetFileName(snapshot), report.GetProperty("hub").GetProperty("revision").GetString());
            Assert.Contains($"note: {argument}: commit {Path.GetFileName(snapshot)} from the local HuggingFace cache", r.Stderr, StringComparison.Ordinal);
        }
        Assert.Contains($"Hub: {Id} at commit {Path.GetFileName(hub.Main)}", Run("inspect", Id).Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_on_an_id_reads_the_symlinked_shards_and_matches_the_golden_logits()
    {
        var r = Run("verify", Id, "--golden", Fixtures.Golden(Fixtures.TinyB), "--json");
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.True(Json(r.Stdout).GetProperty("cases").GetArrayLength() >= 4);
    }

    [Fact]
    public void Quantize_from_an_id_writes_the_same_tensors_and_records_the_repository_and_commit()
    {
        string fromId = _dir.File("id.gguf"), fromDirectory = _dir.File("dir.gguf");
        var r = Run("quantize", Id, "--type", "q8_0", "-o", fromId);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(0, Run("quantize", Fixtures.TinyB, "--type", "q8_0", "-o", fromDirectory).ExitCode);
        using var a = GgufFile.Open(fromId);
        using var b = GgufFile.Open(fromDirectory);
        Assert.Equal(Id, a.Get(GgufConstants.SourceHubRepositoryKey).AsString);
        Assert.Equal(Path.GetFileName(hub.Main), a.Get(GgufConstants.SourceHubRevisionKey).AsString);
        Assert.False(b.TryGet(GgufConstants.SourceHubRepositoryKey, out _));
        Assert.Equal("tiny", a.Get("general.name").AsString);   // the repository's name, not the commit directory's
        foreach (string key in new[] { "general.tensor_xxh3_128", "general.source.file_sha256", "general.source.file_names" })
            Assert.Equal(b.Get(key).Elements.Select(e => e.AsString), a.Get(key).Elements.Select(e => e.AsString));
    }

    [Fact]
    public void Export_from_an_id_records_the_repository_and_commit_in_the_onnx_metadata()
    {
        string output = _dir.File("onnx");
        var r = Run("export", $"{Id}@v1", "--type", "int8", "-o", output);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var metadata = HymbaTools.Reports.OnnxInspect.For(output).Container.Where(kv => kv.Key.StartsWith("hymba.source.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(Id, metadata["hymba.source.huggingface.repository"]);
        Assert.Equal(Path.GetFileName(hub.V1), metadata["hymba.source.huggingface.revision"]);
        Assert.Equal(hub.V1, metadata["hymba.source.path"]);
        // verify compares the export with its source, found again through the recorded snapshot path and hashes
        var verify = Run("verify", output);
        Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);
        Assert.Contains($"vs {hub.V1}", verify.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Convert_on_an_id_reports_the_repository_and_commit()
    {
        string output = _dir.File("convert");
        var r = Run("convert", Id, "--to", "gguf:q8_0", "--out", output, "--random-tokens", "128", "--window", "32");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var report = Json(File.ReadAllText(Path.Combine(output, "report.json")));
        Assert.Equal(hub.Main, report.GetProperty("reference").GetString());
        Assert.Equal(Id, report.GetProperty("reference_hub").GetProperty("repository").GetString());
        Assert.Equal(Path.GetFileName(hub.Main), report.GetProperty("reference_hub").GetProperty("revision").GetString());
        Assert.Contains($"(Hub `{Id}` at commit `{Path.GetFileName(hub.Main)}`)", File.ReadAllText(Path.Combine(output, "report.md")), StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_id_is_exit_2_with_one_line_naming_where_it_looked_and_the_download_command()
    {
        foreach (string command in new[] { "inspect", "verify" })
        {
            var r = Run(command, "hymba-tests/absent");
            Assert.Equal(2, r.ExitCode);
            Assert.Equal(r.Stderr.TrimEnd('\n'), r.FirstErrorLine);   // exactly one line
            Assert.StartsWith("error: hymba-tests/absent: no local directory of that name and not in the HuggingFace cache " + hub.Layout.Directory, r.FirstErrorLine, StringComparison.Ordinal);
            Assert.EndsWith("fetch it with `huggingface-cli download hymba-tests/absent`", r.FirstErrorLine, StringComparison.Ordinal);
        }
        var revision = Run("quantize", $"{Id}@v7", "--type", "q8_0", "-o", _dir.File("never.gguf"));
        Assert.Equal(2, revision.ExitCode);
        Assert.Contains("revision 'v7' is not in the HuggingFace cache", revision.FirstErrorLine, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.File("never.gguf")));
    }

    [Fact]
    public void Help_says_that_hub_ids_are_read_from_the_cache_and_a_local_path_wins()
    {
        foreach (string command in new[] { "inspect", "verify", "quantize", "export", "convert", "compare", "diff", "generate", "imatrix", "merge-kv" })
        {
            var help = Run(command, "--help");
            Assert.Contains("Hub id ORG/NAME[@REVISION]", help.Stdout, StringComparison.Ordinal);
            Assert.Contains("a local path of the same name wins", help.Stdout, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Child processes: HF_HOME from the real environment selects the cache (HF_HUB_CACHE unset), and a directory
    /// named like the id in the current directory is used instead of the cache.
    /// </summary>
    [Fact]
    public void The_real_environment_selects_the_cache_and_a_local_directory_of_the_same_name_wins()
    {
        var environment = new Dictionary<string, string?> { ["HF_HOME"] = hub.HfHome, ["HF_HUB_CACHE"] = null, ["HUGGINGFACE_HUB_CACHE"] = null };
        string elsewhere = _dir.File("elsewhere");
        Directory.CreateDirectory(elsewhere);
        var fromCache = CliRunner.RunProcess(elsewhere, environment, "inspect", Id, "--json");
        Assert.True(fromCache.ExitCode == 0, fromCache.Stderr);
        Assert.Equal(6, Json(fromCache.Stdout).GetProperty("num_layers").GetInt32());
        Assert.Equal(hub.Main, Json(fromCache.Stdout).GetProperty("source").GetString());

        string local = _dir.File("with-local");
        Directory.CreateDirectory(Path.Combine(local, "hymba-tests"));
        _dir.CopyOf(Fixtures.TinyA, Path.Combine("with-local", Id));
        var fromLocal = CliRunner.RunProcess(local, environment, "inspect", Id, "--json");
        Assert.True(fromLocal.ExitCode == 0, fromLocal.Stderr);
        Assert.Equal(4, Json(fromLocal.Stdout).GetProperty("num_layers").GetInt32());
        Assert.False(Json(fromLocal.Stdout).TryGetProperty("hub", out _));
        Assert.DoesNotContain("HuggingFace cache", fromLocal.Stderr, StringComparison.Ordinal);

        var missing = CliRunner.RunProcess(elsewhere, new Dictionary<string, string?> { ["HF_HOME"] = null, ["HF_HUB_CACHE"] = null, ["HUGGINGFACE_HUB_CACHE"] = null, ["XDG_CACHE_HOME"] = _dir.File("xdg") },
            "inspect", "hymba-tests/absent");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains($"HuggingFace cache {_dir.File("xdg")}/huggingface/hub (from XDG_CACHE_HOME)", missing.Stderr, StringComparison.Ordinal);
    }
}
