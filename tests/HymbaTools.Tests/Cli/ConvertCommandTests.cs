using System.Text.Json;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>`convert` as CI runs it: every target exported and compared, reports written, gates that bite, jobs merged.</summary>
public class ConvertCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static string[] Args(string output, params string[] more) =>
        ["convert", Fixtures.TinyB, "--to", "gguf:q8_0,onnx:int4", "--out", output, "--random-tokens", "256", "--window", "64", .. more];

    [Fact]
    public void Convert_writes_every_target_and_a_report_that_matches_its_schema()
    {
        string output = _dir.File("out");
        var r = CliRunner.Run(Args(output, "--max-kl", "10", "--min-top1", "0.1"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(output, "model-q8_0.gguf")));
        Assert.True(File.Exists(Path.Combine(output, "onnx-int4", "model.onnx")));
        var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json"))).RootElement;
        var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "schemas", "conversion-report.schema.json"))).RootElement;
        foreach (var key in schema.GetProperty("required").EnumerateArray()) Assert.True(report.TryGetProperty(key.GetString()!, out _), $"missing {key}");
        var targetKeys = schema.GetProperty("properties").GetProperty("targets").GetProperty("items").GetProperty("required").EnumerateArray().Select(k => k.GetString()!).ToList();
        Assert.Equal(2, report.GetProperty("targets").GetArrayLength());
        foreach (var t in report.GetProperty("targets").EnumerateArray()) foreach (var key in targetKeys) Assert.True(t.TryGetProperty(key, out _), $"target lacks {key}");
        Assert.Contains("random token ids", report.GetProperty("token_source").GetString(), StringComparison.Ordinal);

        string html = File.ReadAllText(Path.Combine(output, "report.html"));
        Assert.Equal(3, html.Split("<svg").Length - 1);                 // KL vs bits, perplexity ratio, speed
        Assert.Contains("class=\"pareto\"", html, StringComparison.Ordinal);
        Assert.Contains("gguf:q8_0", html, StringComparison.Ordinal);    // legend
        foreach (var external in new[] { "<script", "src=", "href=", "url(", "@import" }) Assert.DoesNotContain(external, html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("| gguf:q8_0 |", File.ReadAllText(Path.Combine(output, "report.md")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--max-kl", "1e-9", "mean KL")]
    [InlineData("--min-top1", "1.01", "same top token")]
    [InlineData("--max-ppl-ratio", "0.5", "perplexity ratio")]
    public void A_failing_gate_exits_1_naming_the_target_and_the_figure(string gate, string bound, string figure)
    {
        var r = CliRunner.Run(Args(_dir.File("gated"), gate, bound));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"gate failed: gguf:q8_0: {figure}", r.Stderr, StringComparison.Ordinal);
        Assert.Contains($"gate failed: onnx:int4: {figure}", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_targets_and_missing_evaluation_data_are_input_errors_and_leave_nothing()
    {
        string output = _dir.File("bad");
        Assert.Equal(2, CliRunner.Run("convert", Fixtures.TinyB, "--to", "gguf:q3", "--out", output, "--random-tokens", "256").ExitCode);
        Assert.Equal(2, CliRunner.Run("convert", Fixtures.TinyB, "--to", "gguf:q8_0", "--targets", "onnx:int4", "--out", output, "--random-tokens", "256").ExitCode);
        var noText = CliRunner.Run("convert", Fixtures.TinyB, "--to", "gguf:q8_0", "--out", output);
        Assert.Equal(2, noText.ExitCode);
        Assert.StartsWith("error: --text:", noText.FirstErrorLine, StringComparison.Ordinal);
        Assert.Contains("--random-tokens", noText.FirstErrorLine, StringComparison.Ordinal);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void Per_target_jobs_merge_into_one_report()
    {
        string a = _dir.File("job-a"), b = _dir.File("job-b"), merged = _dir.File("merged");
        Assert.Equal(0, CliRunner.Run(Args(a, "--targets", "gguf:q8_0")).ExitCode);
        Assert.Equal(0, CliRunner.Run(Args(b, "--targets", "onnx:int4")).ExitCode);
        var r = CliRunner.Run("report", "merge", a, Path.Combine(b, "report.json"), "--out", merged);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(merged, "report.json"))).RootElement;
        Assert.Equal(["gguf:q8_0", "onnx:int4"], report.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        Assert.True(File.Exists(Path.Combine(merged, "report.html")));
    }
}
