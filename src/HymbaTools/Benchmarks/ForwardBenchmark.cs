using HymbaTools.Common;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using HymbaTools.Model;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace HymbaTools.Benchmarks;

internal sealed record BenchmarkRow(string Name, int Tokens, double MedianSeconds, double MinSeconds, int Repeats)
{
    public double TokensPerSecond => Tokens / MedianSeconds;
}

/// <summary>
/// Speed of the reference forward pass: prefill at given lengths, decode steps, and, in the same run, the
/// model's projection GEMMs alone on the same shapes (in_proj, x_proj, dt_proj, out_proj, MLP, lm_head),
/// so the share of everything that is not a projection GEMM (attention, scan, conv, norms, RoPE, dispatch)
/// is a measured ratio. Medians over repeats after a warm-up.
/// </summary>
internal static class ForwardBenchmark
{
    public sealed record Result(HymbaConfig Config, IReadOnlyList<BenchmarkRow> Rows, IReadOnlyDictionary<int, double> GemmMedianSeconds, int Threads)
    {
        public string ToText()
        {
            var sb = new StringBuilder();
            var c = Config;
            sb.Append($"model: {c.NumLayers} layers, d={c.HiddenSize}, vocab {c.VocabSize}, {c.NumMemoryTokens} meta tokens; torch threads {Threads}\n");
            var t = new TextTable("measurement", "tokens", "median s", "min s", "tokens/s", "projection GEMMs s", "non-GEMM share");
            foreach (var r in Rows)
            {
                string gemm = "", share = "";
                if (r.Name.StartsWith("prefill", StringComparison.Ordinal) && GemmMedianSeconds.TryGetValue(r.Tokens, out double g))
                {
                    gemm = g.ToString("F4", CultureInfo.InvariantCulture);
                    share = ((r.MedianSeconds - g) / r.MedianSeconds).ToString("P1", CultureInfo.InvariantCulture);
                }
                t.Add(r.Name, r.Tokens, r.MedianSeconds.ToString("F4", CultureInfo.InvariantCulture), r.MinSeconds.ToString("F4", CultureInfo.InvariantCulture),
                    r.TokensPerSecond.ToString("F1", CultureInfo.InvariantCulture), gemm, share);
            }
            sb.Append(t);
            sb.Append("non-GEMM share = (prefill median - projection GEMM median) / prefill median; prefill runs meta + text tokens.\n");
            return sb.ToString();
        }
    }

    public static Result Run(HymbaModel model, IReadOnlyList<int> prefillLengths, int decodeSteps, int repeats, Action<string>? log = null)
    {
        var c = model.Config;
        var rng = new Random(17);
        var rows = new List<BenchmarkRow>();
        var gemm = new Dictionary<int, double>();
        foreach (int length in prefillLengths)
        {
            long[][] ids = [Enumerable.Range(0, length).Select(_ => (long)rng.Next(c.VocabSize)).ToArray()];
            log?.Invoke($"prefill {length} tokens x {repeats + 1}");
            var times = BenchTiming.Time(repeats, () => model.Forward(ids));
            rows.Add(new BenchmarkRow($"prefill {length}", length, BenchTiming.Median(times), times.Min(), repeats));
            log?.Invoke($"projection GEMMs at {length} tokens x {repeats + 1}");
            using (var inputs = new GemmInputs(c, c.NumMemoryTokens + length))
                gemm[length] = BenchTiming.Median(BenchTiming.Time(repeats, () => ProjectionGemms(model, inputs, length)));
        }
        if (decodeSteps > 0)
        {
            int prompt = Math.Min(prefillLengths.Count > 0 ? prefillLengths.Min() : 16, 128);
            long[][] ids = [Enumerable.Range(0, prompt).Select(_ => (long)rng.Next(c.VocabSize)).ToArray()];
            log?.Invoke($"decode {decodeSteps} steps after a {prompt}-token prompt x {repeats + 1}");
            var times = BenchTiming.Time(repeats, () =>
            {
                using var cache = model.NewCache(1);
                model.Step(ids, cache);
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < decodeSteps; i++) model.Step([[ids[0][i % prompt]]], cache);
                return sw.Elapsed.TotalSeconds;
            });
            rows.Add(new BenchmarkRow("decode", decodeSteps, BenchTiming.Median(times), times.Min(), repeats));
        }
        return new Result(c, rows, gemm, torch.get_num_threads());
    }

    /// <summary>Activations of the right shapes, made once outside the timed region.</summary>
    private sealed class GemmInputs : IDisposable
    {
        public GemmInputs(HymbaConfig c, int steps)
        {
            X = torch.randn(1, steps, c.HiddenSize);
            U = torch.randn(1, steps, c.DInner);
            Dt = torch.randn(1, steps, c.DtRank);
            G = torch.randn(1, steps, c.IntermediateSize);
        }
        public Tensor X { get; }
        public Tensor U { get; }
        public Tensor Dt { get; }
        public Tensor G { get; }
        public void Dispose() { X.Dispose(); U.Dispose(); Dt.Dispose(); G.Dispose(); }
    }

    /// <summary>The projection GEMMs of one forward (lm_head over the text rows).</summary>
    private static void ProjectionGemms(HymbaModel model, GemmInputs inputs, int textSteps)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        foreach (var w in model.Weights.Layers)
        {
            F.linear(inputs.X, w.InProj);
            F.linear(inputs.U, w.XProj);
            F.linear(inputs.Dt, w.DtProjWeight);
            F.linear(inputs.U, w.OutProj);
            F.linear(inputs.X, w.GateUp);
            F.linear(inputs.G, w.Down);
        }
        F.linear(inputs.X[.., ..textSteps, ..], model.Weights.LmHead);
    }
}
