using System.Text.Json;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

public class VerifyCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Golden_verify_passes_with_exit_0_and_reports_json()
    {
        var r = CliRunner.Run("verify", Fixtures.TinyB, "--golden", Fixtures.Golden(Fixtures.TinyB), "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.True(doc.RootElement.GetProperty("passed").GetBoolean());
        var cases = doc.RootElement.GetProperty("cases");
        Assert.Equal(8, cases.GetArrayLength()); // 4 forward + 2 decode cases x 2 modes
        foreach (var c in cases.EnumerateArray())
        {
            Assert.True(c.GetProperty("max_abs_diff").GetDouble() <= 1e-4);
            Assert.True(c.TryGetProperty("nmse", out _));
            Assert.Equal(1.0, c.GetProperty("argmax_agreement").GetDouble());
        }
    }

    [Fact]
    public void Out_of_tolerance_gives_exit_1()
    {
        var r = CliRunner.Run("verify", Fixtures.TinyA, "--golden", Fixtures.Golden(Fixtures.TinyA), "--tolerance", "1e-9");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("FAIL", r.Stdout);
    }

    [Fact]
    public void Golden_of_another_model_gives_exit_2()
    {
        var r = CliRunner.Run("verify", Fixtures.TinyA, "--golden", Fixtures.Golden(Fixtures.TinyB));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("vocab", r.FirstErrorLine);
    }

    [Fact]
    public void Self_checks_pass_without_golden()
    {
        var r = CliRunner.Run("verify", Fixtures.TinyA);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("prefill+decode", r.Stdout);
        Assert.Contains("batch-vs-single", r.Stdout);
    }
}
