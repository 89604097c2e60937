using System.Text.Json;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>Issue 20 item 6: the verify step of `convert` is recorded in its reports, with its worst case and tolerance, also when it fails.</summary>
public class ConvertVerificationTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static string[] Args(string output, params string[] more) =>
        ["convert", Fixtures.TinyB, "--to", "gguf:q8_0", "--out", output, "--random-tokens", "128", "--window", "64", .. more];

    private static JsonElement Schema => JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "schemas", "conversion-report.schema.json"))).RootElement;

    /// <summary>Every key of the report is declared by the schema, and every key an object of the schema requires is there.</summary>
    private static void AssertMatchesSchema(JsonElement report)
    {
        var properties = Schema.GetProperty("properties");
        foreach (var key in report.EnumerateObject()) Assert.True(properties.TryGetProperty(key.Name, out _), $"report.json has '{key.Name}', which the schema does not declare");
        foreach (var name in new[] { "verification", "evaluation" })
        {
            var declared = properties.GetProperty(name);
            foreach (var key in declared.GetProperty("required").EnumerateArray()) Assert.True(report.GetProperty(name).TryGetProperty(key.GetString()!, out _), $"{name} lacks {key}");
            foreach (var key in report.GetProperty(name).EnumerateObject()) Assert.True(declared.GetProperty("properties").TryGetProperty(key.Name, out _), $"{name}.{key.Name} undeclared");
        }
    }

    [Fact]
    public void A_golden_check_is_recorded_in_every_report_with_its_worst_case_and_tolerance()
    {
        string output = _dir.File("out");
        var r = CliRunner.Run(Args(output, "--golden", Fixtures.Golden(Fixtures.TinyB), "--json"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json"))).RootElement;
        AssertMatchesSchema(report);
        var v = report.GetProperty("verification");
        Assert.Equal("golden", v.GetProperty("mode").GetString());
        Assert.Equal(Fixtures.Golden(Fixtures.TinyB), v.GetProperty("golden").GetString());
        Assert.Equal(1e-4, v.GetProperty("tolerance").GetDouble());
        Assert.True(v.GetProperty("cases").GetInt32() >= 4);
        double worst = v.GetProperty("worst_max_abs_diff").GetDouble();
        Assert.InRange(worst, 1e-9, TestTolerances.GoldenLogits);
        Assert.Equal(0, v.GetProperty("failed_cases").GetArrayLength());
        var e = report.GetProperty("evaluation");
        Assert.Equal(2, e.GetProperty("windows").GetInt32());
        Assert.Equal(2 * 31, e.GetProperty("scored_tokens").GetInt32());
        Assert.Contains("Verification: golden", File.ReadAllText(Path.Combine(output, "report.md")), StringComparison.Ordinal);
        Assert.Contains("Verification: golden", File.ReadAllText(Path.Combine(output, "report.html")), StringComparison.Ordinal);
        Assert.Contains("2 windows of 64 tokens", File.ReadAllText(Path.Combine(output, "report.md")), StringComparison.Ordinal);
        // --json: stdout is the report, and stderr has no notes or progress
        Assert.Equal(File.ReadAllText(Path.Combine(output, "report.json")).Trim(), r.Stdout.Trim());
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void A_failing_golden_check_names_the_difference_and_tolerance_and_keeps_the_report()
    {
        string output = _dir.File("failed");
        var r = CliRunner.Run(Args(output, "--golden", Fixtures.Golden(Fixtures.TinyB), "--tolerance", "1e-9"));
        Assert.Equal(1, r.ExitCode);
        var failed = r.Stderr.Split('\n').Where(l => l.StartsWith("check failed: verify:", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(failed);
        Assert.All(failed, l => Assert.Matches(@"max abs diff [0-9.eE+-]+ > tolerance 1E-09", l));
        var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json"))).RootElement;
        AssertMatchesSchemaWithoutEvaluation(report);
        Assert.False(report.GetProperty("passed").GetBoolean());
        Assert.False(report.GetProperty("verification").GetProperty("passed").GetBoolean());
        Assert.Equal(1e-9, report.GetProperty("verification").GetProperty("tolerance").GetDouble());
        Assert.Equal(failed.Count, report.GetProperty("verification").GetProperty("failed_cases").GetArrayLength());
        Assert.Equal(0, report.GetProperty("targets").GetArrayLength());
        Assert.Contains("FAILED", File.ReadAllText(Path.Combine(output, "report.html")), StringComparison.Ordinal);
        Assert.Equal(2, CliRunner.Run(Args(_dir.File("bad-tolerance"), "--tolerance", "-1")).ExitCode);
    }

    private static void AssertMatchesSchemaWithoutEvaluation(JsonElement report)
    {
        var properties = Schema.GetProperty("properties");
        foreach (var key in report.EnumerateObject()) Assert.True(properties.TryGetProperty(key.Name, out _), $"undeclared {key.Name}");
        foreach (var key in properties.GetProperty("verification").GetProperty("required").EnumerateArray())
            Assert.True(report.GetProperty("verification").TryGetProperty(key.GetString()!, out _), $"verification lacks {key}");
    }
}
