using System.Text.Json;
using HymbaTools.Quantization;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>Issue 20 item 7: every label and figure says what it is, and two outputs that measure differently say how.</summary>
public class LabelsAndFiguresTests : IDisposable
{
    private static readonly string ExampleModel = Path.Combine(AppContext.BaseDirectory, "example-model");
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static string Line(string text, string label) => text.Split('\n').Single(l => l.TrimStart().StartsWith(label, StringComparison.Ordinal));

    [Fact]
    public void A_gguf_prints_its_float32_eps_as_the_checkpoint_does()
    {
        string gguf = _dir.File("f32.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "f32", "-o", gguf).ExitCode);
        string fromGguf = Line(CliRunner.Run("inspect", gguf).Stdout, "RMSNorm eps");
        Assert.Equal(Line(CliRunner.Run("inspect", Fixtures.TinyA).Stdout, "RMSNorm eps"), fromGguf);
        Assert.EndsWith("1E-06", fromGguf.TrimEnd(), StringComparison.Ordinal);
        using var json = JsonDocument.Parse(CliRunner.Run("inspect", gguf, "--json").Stdout);
        Assert.Equal(1e-6f, json.RootElement.GetProperty("rms_norm_eps").GetSingle());
        Assert.DoesNotContain("9.99999", json.RootElement.GetProperty("rms_norm_eps").GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_verify_header_names_every_tolerance_its_rows_use()
    {
        string export = _dir.File("int8");
        Assert.Equal(0, CliRunner.Run("export", Fixtures.TinyA, "--type", "int8", "-o", export).ExitCode);
        var r = CliRunner.Run("verify", export);
        string header = r.Stdout.Split('\n')[0];
        Assert.Contains("tolerance 1e-4 max abs (2.5e-1 for batch-vs-single, prefill+decode)", header, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(CliRunner.Run("verify", export, "--json").Stdout);
        var batch = json.RootElement.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "batch-vs-single");
        Assert.Equal(0.25, batch.GetProperty("tolerance").GetDouble());
    }

    [Fact]
    public void Verify_says_a_deleted_source_is_missing_not_changed()
    {
        string source = _dir.CopyOf(Fixtures.TinyA, "source"), export = _dir.File("export");
        Assert.Equal(0, CliRunner.Run("export", source, "--type", "f32", "-o", export).ExitCode);
        File.Delete(Path.Combine(source, "model.safetensors"));
        var fileGone = CliRunner.Run("verify", export);
        Assert.Contains("model.safetensors is missing", fileGone.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("changed", fileGone.Stderr, StringComparison.Ordinal);
        File.AppendAllText(Path.Combine(source, "config.json"), " ");
        Assert.Contains("config.json changed since the export", CliRunner.Run("verify", export).Stderr, StringComparison.Ordinal);
        Directory.Delete(source, recursive: true);
        var allGone = CliRunner.Run("verify", export);
        Assert.Equal(0, allGone.ExitCode);
        Assert.Contains("the export's source, is missing", allGone.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void An_importance_matrix_that_covers_part_of_the_model_is_warned_about()
    {
        string tokens = _dir.File("tokens.txt"), full = _dir.File("full.imatrix"), partial = _dir.File("partial.imatrix");
        File.WriteAllText(tokens, string.Join(' ', Enumerable.Range(0, 128).Select(i => (i * 37) % 4000)));
        Assert.Equal(0, CliRunner.Run("imatrix", ExampleModel, "--tokens", tokens, "--chunk", "64", "--chunks", "2", "-o", full).ExitCode);
        var matrix = ImportanceMatrix.Load(full);
        Assert.Equal("example-model", matrix.Model);
        int count = matrix.Entries.Count;
        var kept = matrix.Entries.Keys.Skip(2).ToHashSet();
        new ImportanceMatrix { Entries = matrix.Entries.Where(e => kept.Contains(e.Key)).ToDictionary(), Dataset = "other.txt", Chunks = 1, Tokens = 64, Model = "another-model" }.Save(partial);

        var warned = CliRunner.Run("quantize", ExampleModel, "--type", "q4_0", "--imatrix", partial, "-o", _dir.File("p.gguf"));
        Assert.True(warned.ExitCode == 0, warned.Stderr);
        var warning = warned.Stderr.Split('\n').Single(l => l.StartsWith("warning: --imatrix:", StringComparison.Ordinal));
        Assert.Contains($"matches {count - 2} of the {count}", warning, StringComparison.Ordinal);
        Assert.Contains("model another-model", warning, StringComparison.Ordinal);
        Assert.Contains("dataset other.txt", warning, StringComparison.Ordinal);
        var quiet = CliRunner.Run("quantize", ExampleModel, "--type", "q4_0", "--imatrix", full, "-o", _dir.File("f.gguf"));
        Assert.DoesNotContain("warning", quiet.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_dry_run_size_is_the_size_of_the_file_written()
    {
        foreach (var (input, type) in new[] { (Fixtures.TinyB, "q8_0"), (Fixtures.TinyB, "q4_k_m"), (ExampleModel, "iq4_nl_m") })
        {
            string path = _dir.File($"{type}.gguf");
            string plan = CliRunner.Run("quantize", input, "--type", type, "--dry-run").Stdout;
            Assert.Equal(0, CliRunner.Run("quantize", input, "--type", type, "-o", path).ExitCode);
            Assert.Contains($"GGUF file size: {new FileInfo(path).Length:N0} bytes", plan, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Compare_and_merge_kv_say_which_tokens_they_scored()
    {
        string q8 = _dir.File("q8.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyB, "--type", "q8_0", "-o", q8).ExitCode);
        var compare = CliRunner.Run("compare", Fixtures.TinyB, q8, "--random-tokens", "129", "--chunk", "64");
        Assert.Contains("every token of each chunk scored", compare.Stdout, StringComparison.Ordinal);
        using (var json = JsonDocument.Parse(CliRunner.Run("compare", Fixtures.TinyB, q8, "--random-tokens", "129", "--chunk", "64", "--json").Stdout))
            Assert.Equal("every token of each chunk scored", json.RootElement.GetProperty("scoring").GetString());
        var merge = CliRunner.Run("merge-kv", Fixtures.TinyB, "--groups", "[[1,2,3]]", "-o", _dir.File("m"), "--random-tokens", "64", "--json");
        Assert.True(merge.ExitCode == 0, merge.Stderr);
        using (var json = JsonDocument.Parse(merge.Stdout))
            Assert.Equal("one sequence, every token scored", json.RootElement.GetProperty("accuracy").GetProperty("scoring").GetString());
        var diff = CliRunner.Run("diff", Fixtures.TinyB, q8, "--random-tokens", "256", "--window", "64");
        Assert.Contains("(4 windows, second halves scored)", diff.Stdout, StringComparison.Ordinal);
    }
}
