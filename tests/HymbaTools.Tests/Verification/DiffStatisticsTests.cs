using System.Text.Json;
using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;
using HymbaTools.Verification;

namespace HymbaTools.Tests.Verification;

/// <summary>The diff statistics against values worked out by hand on three tiny distributions.</summary>
public class DiffStatisticsTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Statistics_match_hand_computed_values()
    {
        float ln3 = MathF.Log(3);
        // Row 1: A = (1/2, 1/2), B = (3/4, 1/4), next 0. Row 2: A = (1/4, 3/4), B = (1/2, 1/2), next 1. Row 3: equal, next 1.
        float[] a = [0, 0, 0, ln3, 1, 2];
        float[] b = [ln3, 0, 0, 0, 1, 2];
        var s = DiffStatistics.FromLogits(a, b, 2, [0, 1, 1]);
        double kl1 = 0.5 * Math.Log(4.0 / 3), kl2 = 0.25 * Math.Log(0.5) + 0.75 * Math.Log(1.5);
        Assert.Equal(3, s.ScoredTokens);
        Assert.Equal((kl1 + kl2) / 3, s.MeanKl.Value, 1e-6);
        Assert.Equal(0.045930, s.MeanKl.Uncertainty, 1e-5);               // sample SD / sqrt(3)
        Assert.Equal(kl2, s.KlPercentiles["median"], 1e-6);
        Assert.Equal(kl2 + 0.8 * (kl1 - kl2), s.KlPercentiles["p90"], 1e-6); // rank 0.9 x 2 = 1.8
        Assert.Equal(kl1, s.KlPercentiles["max"], 1e-6);
        Assert.Equal(2.0 / 3, s.SameTop.Value, 1e-9);                        // row 2: A picks 1, B ties and picks 0
        Assert.Equal(Math.Sqrt(2.0 / 27), s.SameTop.Uncertainty, 1e-9);
        Assert.Equal(Math.Sqrt(0.125 / 3), s.RmsDeltaP.Value, 1e-6);       // Δp = +1/4, -1/4, 0
        Assert.Equal(0.25, s.MaxAbsDeltaP, 1e-6);
        double nll = Math.Log(2) + Math.Log(4.0 / 3) + Math.Log(1 + Math.Exp(-1));
        Assert.Equal(Math.Exp(nll / 3), s.PerplexityA, 1e-5);
        Assert.Equal(s.PerplexityA, s.PerplexityB, 1e-9);                   // the same log-probs in another order
        Assert.Equal(1.0, s.PerplexityRatio.Value, 1e-9);
        Assert.Equal(Math.Log(1.5) / Math.Sqrt(3), s.PerplexityRatio.Uncertainty, 1e-6);
        Assert.Equal(ln3, s.MaxAbsLogitDiff, 1e-6);
    }

    [Fact]
    public void Identical_artifacts_differ_by_nothing_and_the_cli_report_matches_its_schema()
    {
        var r = CliRunner.Run("diff", Fixtures.TinyA, Fixtures.TinyA, "--json", "--window", "32", "--max-tokens", "128", "--random-tokens", "128");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var root = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(0, root.GetProperty("mean_kl").GetProperty("value").GetDouble());
        Assert.Equal(1, root.GetProperty("same_top").GetProperty("value").GetDouble());
        Assert.Equal(1, root.GetProperty("perplexity_ratio").GetProperty("value").GetDouble(), 1e-12);
        Assert.Contains("random token ids", root.GetProperty("token_source").GetString(), StringComparison.Ordinal); // asked for random ids: said so
        var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "schemas", "diff-report.schema.json"))).RootElement;
        foreach (var key in schema.GetProperty("required").EnumerateArray()) Assert.True(root.TryGetProperty(key.GetString()!, out _), $"missing {key}");

        string q4 = _dir.File("q4.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q4_0", "-o", q4).ExitCode);
        var d = CliRunner.Run("diff", Fixtures.TinyA, q4, "--window", "32", "--max-tokens", "128", "--random-tokens", "128");
        Assert.True(d.ExitCode == 0, d.Stderr);
        Assert.Contains("mean KL", d.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("mean KL             0 ±", d.Stdout, StringComparison.Ordinal);
    }
}
