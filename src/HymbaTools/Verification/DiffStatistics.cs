using System.Globalization;
using System.Text;
using System.Text.Json;
using HymbaTools.Runtime;

namespace HymbaTools.Verification;

/// <summary>The reference's logits for the scored half of every window: computed once, compared with every artifact.</summary>
public sealed class ReferenceLogits
{
    private ReferenceLogits(int vocab, int window, IReadOnlyList<(long[] Ids, float[] Scored)> windows)
    {
        Vocab = vocab;
        Window = window;
        Windows = windows;
    }

    public int Vocab { get; }
    public int Window { get; }
    public IReadOnlyList<(long[] Ids, float[] Scored)> Windows { get; }

    /// <summary>Runs the reference once over every whole window of <paramref name="tokens"/>; progress counts windows.</summary>
    public static ReferenceLogits Compute(IHymbaRunner reference, long[] tokens, int window, IProgress<(long Done, long Total)>? progress = null)
    {
        if (window < 4) throw new Common.InvalidRequestException("--window", $"{window}, expected at least 4 tokens");
        int count = tokens.Length / window;
        if (count == 0) throw new Common.InvalidRequestException("--tokens", $"{tokens.Length} tokens, fewer than one window of {window}");
        int vocab = reference.Config.VocabSize;
        var windows = new List<(long[], float[])>();
        for (int w = 0; w < count; w++)
        {
            long[] ids = tokens.AsSpan(w * window, window).ToArray();
            var logits = reference.Forward([ids]).Data;
            windows.Add((ids, logits.AsSpan(window / 2 * vocab, (window - 1 - window / 2) * vocab).ToArray()));
            progress?.Report((w + 1, count));
        }
        return new ReferenceLogits(vocab, window, windows);
    }
}

/// <summary>A mean with its standard error.</summary>
public readonly record struct Estimate(double Value, double Uncertainty)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Value:G6} ± {Uncertainty:G3}");
}

/// <summary>
/// How two artifacts' next-token distributions differ on the same text, with the statistics of llama.cpp's
/// `llama-perplexity --kl-divergence`: the text is cut into windows, the first half of each window is context and
/// only the second half is scored (every scored token has at least half a window of context). Per scored token:
/// KL(A‖B) over the whole vocabulary, whether the top tokens agree, Δp = p_B(next) − p_A(next), and both models'
/// log-probability of the next token. Uncertainties are standard errors (σ/√n; binomial for the agreement; the
/// perplexity ratio's from the per-token log ratio). Percentiles interpolate linearly between order statistics.
/// </summary>
public sealed record DiffStatistics(
    int ScoredTokens,
    int Windows,
    double MaxAbsLogitDiff,
    double Nmse,
    Estimate MeanKl,
    IReadOnlyDictionary<string, double> KlPercentiles,
    Estimate SameTop,
    Estimate RmsDeltaP,
    double MaxAbsDeltaP,
    double PerplexityA,
    double PerplexityB,
    Estimate PerplexityRatio)
{
    public static readonly (string Name, double Q)[] Percentiles = [("median", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)];

    /// <summary>Runs both artifacts over the same windows of <paramref name="tokens"/> and measures them.</summary>
    /// <remarks>Progress counts the windows of both runs: A's first, then B's.</remarks>
    public static DiffStatistics Measure(IHymbaRunner a, IHymbaRunner b, long[] tokens, int window, IProgress<(long Done, long Total)>? progress = null)
    {
        var reference = ReferenceLogits.Compute(a, tokens, window, Common.ProgressPart.Of(progress, 0, 2));
        return Measure(reference, b, Common.ProgressPart.Of(progress, 1, 2));
    }

    /// <summary>Measures an artifact against reference logits computed once (and reused for every artifact).</summary>
    public static DiffStatistics Measure(ReferenceLogits reference, IHymbaRunner b, IProgress<(long Done, long Total)>? progress = null)
    {
        int vocab = reference.Vocab, window = reference.Window;
        var accumulator = new Accumulator();
        for (int w = 0; w < reference.Windows.Count; w++)
        {
            var (ids, scored) = reference.Windows[w];
            var lb = b.Forward([ids]).Data;
            // Position t predicts token t+1; the second half of the window is scored.
            for (int t = window / 2, r = 0; t < window - 1; t++, r++)
                accumulator.Add(scored.AsSpan(r * vocab, vocab), lb.AsSpan(t * vocab, vocab), (int)ids[t + 1]);
            progress?.Report((w + 1, reference.Windows.Count));
        }
        return accumulator.Result(reference.Windows.Count);
    }

    /// <summary>Statistics of given logits (rows of <paramref name="vocab"/>) and the token each row should predict.</summary>
    public static DiffStatistics FromLogits(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int vocab, ReadOnlySpan<int> next)
    {
        var accumulator = new Accumulator();
        for (int t = 0; t < next.Length; t++) accumulator.Add(a.Slice(t * vocab, vocab), b.Slice(t * vocab, vocab), next[t]);
        return accumulator.Result(1);
    }

    private sealed class Accumulator
    {
        private readonly List<double> _kl = [], _deltaP = [], _logRatio = [];
        private double _maxAbs, _sumSquaredError, _sumA, _sumSquaredA, _nllA, _nllB;
        private long _logitCount;
        private int _same;

        public void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int next)
        {
            double maxA = double.NegativeInfinity, maxB = double.NegativeInfinity;
            int topA = 0, topB = 0;
            for (int i = 0; i < a.Length; i++)
            {
                if (a[i] > maxA) { maxA = a[i]; topA = i; }
                if (b[i] > maxB) { maxB = b[i]; topB = i; }
                double d = a[i] - b[i];
                _maxAbs = Math.Max(_maxAbs, Math.Abs(d));
                _sumSquaredError += d * d;
                _sumA += a[i];
                _sumSquaredA += (double)a[i] * a[i];
            }
            _logitCount += a.Length;
            var (logZA, logZB) = LogitComparison.LogNormalizers(a, maxA, b, maxB);
            _kl.Add(LogitComparison.KlDivergence(a, logZA, b, logZB));
            if (topA == topB) _same++;
            double lnA = a[next] - logZA, lnB = b[next] - logZB;
            _nllA -= lnA;
            _nllB -= lnB;
            _deltaP.Add(Math.Exp(lnB) - Math.Exp(lnA));
            _logRatio.Add(lnA - lnB); // ln(PPL_B/PPL_A) contribution
        }

        public DiffStatistics Result(int windows)
        {
            int n = _kl.Count;
            double mean = _sumA / _logitCount;
            double variance = _sumSquaredA / _logitCount - mean * mean;
            var sorted = _kl.Order().ToList();
            var percentiles = Percentiles.ToDictionary(p => p.Name, p => Quantile(sorted, p.Q));
            double same = (double)_same / n;
            double meanSquareDp = _deltaP.Average(d => d * d);
            double rms = Math.Sqrt(meanSquareDp);
            // Standard error of the RMS from that of the mean square (delta method).
            double rmsError = rms > 0 ? StandardError(_deltaP.Select(d => d * d).ToList()) / (2 * rms) : 0;
            double meanLogRatio = _logRatio.Average();
            double ratio = Math.Exp(meanLogRatio);
            double pplA = Math.Exp(_nllA / n), pplB = Math.Exp(_nllB / n);
            return new DiffStatistics(n, windows, _maxAbs, variance > 0 ? _sumSquaredError / _logitCount / variance : 0,
                new Estimate(_kl.Average(), StandardError(_kl)), percentiles,
                new Estimate(same, Math.Sqrt(same * (1 - same) / n)),
                new Estimate(rms, rmsError), _deltaP.Max(d => Math.Abs(d)),
                pplA, pplB, new Estimate(ratio, ratio * StandardError(_logRatio)));
        }
    }

    /// <summary>Linear interpolation between order statistics at rank q·(n−1) (numpy's default).</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q)
    {
        if (sorted.Count == 0) return 0;
        double rank = q * (sorted.Count - 1);
        int lo = (int)Math.Floor(rank), hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (rank - lo) * (sorted[hi] - sorted[lo]);
    }

    private static double StandardError(IReadOnlyList<double> values)
    {
        int n = values.Count;
        if (n < 2) return 0;
        double mean = values.Average();
        double variance = values.Sum(v => (v - mean) * (v - mean)) / (n - 1);
        return Math.Sqrt(variance / n);
    }

    public string ToText(string a, string b, string tokenSource)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"diff {a}\n  vs {b}\n  on {ScoredTokens:N0} scored tokens of {tokenSource} ({Windows} windows, second halves scored)\n\n");
        sb.Append(inv, $"max |Δlogit|        {MaxAbsLogitDiff:G4}\nNMSE                {Nmse:G4}\n");
        sb.Append(inv, $"mean KL             {MeanKl} nats\n");
        sb.Append("KL percentiles      " + string.Join(", ", KlPercentiles.Select(p => string.Create(inv, $"{p.Key} {p.Value:G4}"))) + "\n");
        sb.Append(inv, $"same top token      {SameTop.Value * 100:F2} % ± {SameTop.Uncertainty * 100:F2} %\n");
        sb.Append(inv, $"RMS Δp              {RmsDeltaP.Value * 100:F3} % ± {RmsDeltaP.Uncertainty * 100:F3} %   max |Δp| {MaxAbsDeltaP * 100:F2} %\n");
        sb.Append(inv, $"perplexity          A {PerplexityA:F4}, B {PerplexityB:F4}, ratio B/A {PerplexityRatio}\n");
        return sb.ToString();
    }

    public void WriteJson(Stream stream, string a, string b, string tokenSource)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("a", a);
        w.WriteString("b", b);
        w.WriteString("token_source", tokenSource);
        w.WriteNumber("scored_tokens", ScoredTokens);
        w.WriteNumber("windows", Windows);
        w.WriteNumber("max_abs_logit_diff", MaxAbsLogitDiff);
        w.WriteNumber("nmse", Nmse);
        Write(w, "mean_kl", MeanKl);
        w.WriteStartObject("kl_percentiles");
        foreach (var (k, v) in KlPercentiles) w.WriteNumber(k, v);
        w.WriteEndObject();
        Write(w, "same_top", SameTop);
        Write(w, "rms_delta_p", RmsDeltaP);
        w.WriteNumber("max_abs_delta_p", MaxAbsDeltaP);
        w.WriteNumber("perplexity_a", PerplexityA);
        w.WriteNumber("perplexity_b", PerplexityB);
        Write(w, "perplexity_ratio", PerplexityRatio);
        w.WriteEndObject();
    }

    private static void Write(Utf8JsonWriter w, string name, Estimate e)
    {
        w.WriteStartObject(name);
        w.WriteNumber("value", e.Value);
        w.WriteNumber("uncertainty", e.Uncertainty);
        w.WriteEndObject();
    }
}
