using System.Text.Json;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

public class CompareAndGenerateTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Compare_reports_every_artifact_in_the_documented_json_and_orders_quality_by_bits()
    {
        string q8 = _dir.File("q8.gguf"), q4 = _dir.File("q4.gguf"), json = _dir.File("report.json"), svg = _dir.File("plot.svg");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyB, "--type", "q8_0", "-o", q8).ExitCode);
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyB, "--type", "q4_0", "-o", q4).ExitCode);
        var r = CliRunner.Run("compare", Fixtures.TinyB, q8, q4, "--json-out", json, "--svg-out", svg, "--chunk", "32", "--max-tokens", "128", "--random-tokens", "200");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("| q8_0 |", r.Stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "schemas", "comparison-report.schema.json"))).RootElement;
        foreach (var key in schema.GetProperty("required").EnumerateArray()) Assert.True(doc.RootElement.TryGetProperty(key.GetString()!, out _));
        var required = schema.GetProperty("properties").GetProperty("artifacts").GetProperty("items").GetProperty("required").EnumerateArray().Select(e => e.GetString()!).ToList();
        var artifacts = doc.RootElement.GetProperty("artifacts").EnumerateArray().ToList();
        Assert.Equal(2, artifacts.Count);
        foreach (var a in artifacts) foreach (var key in required) Assert.True(a.TryGetProperty(key, out _), $"missing {key}");
        Assert.True(artifacts[0].GetProperty("mean_kl").GetDouble() < artifacts[1].GetProperty("mean_kl").GetDouble());
        Assert.True(artifacts[0].GetProperty("bits_per_weight").GetDouble() > artifacts[1].GetProperty("bits_per_weight").GetDouble());
        Assert.StartsWith("<svg", File.ReadAllText(svg));
        // the report is deterministic: a second run writes the same bytes
        string again = _dir.File("report-again.json");
        Assert.Equal(0, CliRunner.Run("compare", Fixtures.TinyB, q8, q4, "--json-out", again, "--chunk", "32", "--max-tokens", "128", "--random-tokens", "200").ExitCode);
        Assert.Equal(File.ReadAllBytes(json), File.ReadAllBytes(again));
        // CI gate: a threshold below q4_0's KL fails with exit 1
        Assert.Equal(1, CliRunner.Run("compare", Fixtures.TinyB, q4, "--max-kl", "1e-9", "--chunk", "32", "--max-tokens", "64", "--random-tokens", "100").ExitCode);
    }

    [Fact]
    public void Compare_out_builds_the_requested_types_next_to_given_artifacts_and_gates_them()
    {
        string q4 = _dir.File("q4.gguf"), output = _dir.File("levels");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyB, "--type", "q4_0", "-o", q4).ExitCode);
        var r = CliRunner.Run("compare", Fixtures.TinyB, q4, "--types", "q8_0,onnx:int8", "--out", output, "--random-tokens", "256", "--chunk", "64", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(output, "model-q8_0.gguf")));
        Assert.True(File.Exists(Path.Combine(output, "onnx-int8", "model.onnx")));
        Assert.True(File.Exists(Path.Combine(output, "report.html")));
        using var printed = JsonDocument.Parse(r.Stdout);
        Assert.Equal(File.ReadAllText(Path.Combine(output, "report.json")).Trim(), r.Stdout.Trim());
        var names = printed.RootElement.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("name").GetString()).ToList();
        Assert.Equal(["q4_0", "gguf:q8_0", "onnx:int8"], names);
        var kl = printed.RootElement.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("mean_kl").GetDouble()).ToList();
        Assert.True(kl[1] < kl[0], $"q8_0 KL {kl[1]} should be below q4_0's {kl[0]}");

        // an existing --out without --force is refused; a gate below q4_0's KL fails naming it, and --out is still written
        Assert.Equal(2, CliRunner.Run("compare", Fixtures.TinyB, q4, "--out", output, "--random-tokens", "256", "--chunk", "64").ExitCode);
        var gated = CliRunner.Run("compare", Fixtures.TinyB, q4, "--out", output, "--force", "--random-tokens", "256", "--chunk", "64", "--max-kl", "1e-9");
        Assert.Equal(1, gated.ExitCode);
        Assert.Contains("gate failed: q4_0: mean KL", gated.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(output, "model-q8_0.gguf")));

        // --types needs --out, and compare needs something to compare: usage errors naming the option
        Assert.StartsWith("error: --types:", CliRunner.Run("compare", Fixtures.TinyB, q4, "--types", "q8_0", "--random-tokens", "256").FirstErrorLine, StringComparison.Ordinal);
        var nothing = CliRunner.Run("compare", Fixtures.TinyB, "--random-tokens", "256");
        Assert.Equal(2, nothing.ExitCode);
        Assert.StartsWith("error: artifacts:", nothing.FirstErrorLine, StringComparison.Ordinal);
    }

    [Fact]
    public void Compare_out_with_an_importance_matrix_builds_each_gguf_type_twice_and_marks_the_calibrated_one()
    {
        string tokens = _dir.File("tokens.txt"), imatrix = _dir.File("imatrix.safetensors"), output = _dir.File("calibrated");
        File.WriteAllText(tokens, string.Join(' ', Enumerable.Range(0, 128).Select(i => (i * 37) % 512)));
        Assert.Equal(0, CliRunner.Run("imatrix", Fixtures.TinyB, "--tokens", tokens, "--chunk", "32", "--chunks", "4", "-o", imatrix).ExitCode);
        var r = CliRunner.Run("compare", Fixtures.TinyB, "--types", "q4_0", "--imatrix", imatrix, "--out", output, "--random-tokens", "256", "--chunk", "64");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(output, "model-q4_0.gguf")));
        Assert.True(File.Exists(Path.Combine(output, "model-q4_0-imatrix.gguf")));
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(output, "model-q4_0.gguf")), File.ReadAllBytes(Path.Combine(output, "model-q4_0-imatrix.gguf")));
        string html = File.ReadAllText(Path.Combine(output, "report.html"));
        Assert.Contains("gguf:q4_0+imatrix", html, StringComparison.Ordinal);
        Assert.Equal(2, html.Split("class=\"marker calibrated\"").Length - 1);   // the hollow point and its legend marker
    }

    private string RandomExampleModel()
    {
        string dir = Path.Combine(_dir.Path, "example");
        Assert.Equal(0, CliRunner.Run("init", dir, "--preset", "example", "--seed", "3").ExitCode);
        foreach (var f in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "example-tokenizer")))
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
        return dir;
    }

    [Fact]
    public void Generate_streams_text_deterministically_for_a_seed_from_checkpoint_and_gguf()
    {
        string dir = RandomExampleModel();
        var a = CliRunner.Run("generate", dir, "--prompt", "It was", "--max-new-tokens", "12", "--seed", "5");
        var b = CliRunner.Run("generate", dir, "--prompt", "It was", "--max-new-tokens", "12", "--seed", "5");
        Assert.True(a.ExitCode == 0, a.Stderr);
        Assert.StartsWith("It was", a.Stdout);
        Assert.Equal(a.Stdout, b.Stdout);
        Assert.Contains("tokens/s", a.Stderr);
        string gguf = Path.Combine(dir, "model-f32.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", dir, "--type", "f32", "-o", gguf).ExitCode);
        var g = CliRunner.Run("generate", gguf, "--prompt", "It was", "--max-new-tokens", "12", "--seed", "5");
        Assert.Equal(a.Stdout, g.Stdout); // the f32 GGUF is the same model
        var greedy = CliRunner.Run("generate", dir, "--prompt", "It was", "--max-new-tokens", "8", "--temperature", "0", "--chat");
        Assert.Equal(0, greedy.ExitCode);
    }

    [Fact]
    public void Generate_without_a_tokenizer_is_an_input_error()
    {
        var r = CliRunner.Run("generate", Fixtures.TinyA, "--prompt", "x");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("tokenizer.model", r.FirstErrorLine);
    }
}
