using System.Diagnostics;
using System.Globalization;
using System.Text;
using HymbaTools.Formats.Onnx;
using HymbaTools.Reports;
using HymbaTools.Runtime;

namespace HymbaTools.Benchmarks;

/// <summary>
/// Prefill and decode speed of ONNX exports in ONNX Runtime next to the TorchSharp reference, measured in
/// the same run. Decode at batch 1 reads every weight once per token, so its ceiling is the machine's memory
/// bandwidth divided by the weight bytes the runtime reads per token; the bandwidth is measured here too.
/// </summary>
public static class OnnxBenchmark
{
    public sealed record RunnerSpeed(string Name, double PrefillSeconds, int PrefillTokens, double DecodeSecondsPerToken, long WeightBytesPerToken)
    {
        public double PrefillTokensPerSecond => PrefillTokens / PrefillSeconds;
        public double DecodeTokensPerSecond => 1 / DecodeSecondsPerToken;
    }

    public sealed record Result(IReadOnlyList<RunnerSpeed> Runners, double BandwidthBytesPerSecond, int Threads)
    {
        public string ToText()
        {
            var inv = CultureInfo.InvariantCulture;
            var t = new TextTable("runner", "prefill tokens/s", "decode tokens/s", "weight MB read/token", "decode bound tokens/s", "fraction of bound");
            foreach (var r in Runners)
            {
                double bound = BandwidthBytesPerSecond / r.WeightBytesPerToken;
                t.Add(r.Name, r.PrefillTokensPerSecond.ToString("F1", inv), r.DecodeTokensPerSecond.ToString("F2", inv), (r.WeightBytesPerToken / 1e6).ToString("F0", inv),
                    bound.ToString("F2", inv), (r.DecodeTokensPerSecond / bound).ToString("P0", inv));
            }
            return $"threads {Threads}; memory bandwidth {BandwidthBytesPerSecond / 1e9:F2} GB/s (parallel copy, bytes read + written per second)\n{t}" +
                   "decode bound = bandwidth / weight bytes read per token (float16 weights are read as float32: ONNX Runtime folds their cast at load)\n";
        }
    }

    /// <summary>Median prefill time of <paramref name="prefillTokens"/> text tokens and median seconds per decode step after a 16-token prompt.</summary>
    public static RunnerSpeed Measure(string name, IHymbaRunner runner, int prefillTokens, int decodeSteps, int repeats, long weightBytesPerToken, Action<string>? log = null)
    {
        var rng = new Random(29);
        var c = runner.Config;
        long[] prompt = Enumerable.Range(0, prefillTokens).Select(_ => (long)rng.Next(c.VocabSize)).ToArray();
        log?.Invoke($"{name}: prefill {prefillTokens} tokens x {repeats + 1}");
        var prefill = BenchTiming.Time(repeats, () => { runner.Forward([prompt]); });
        log?.Invoke($"{name}: decode {decodeSteps} steps x {repeats + 1}");
        var decode = BenchTiming.Time(repeats, () =>
        {
            using var session = runner.StartDecode(1, Model.DecodeWindowMode.MatchFullForward);
            session.Step([prompt[..Math.Min(16, prompt.Length)]]);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < decodeSteps; i++) session.Step([[prompt[i % prompt.Length]]]);
            return sw.Elapsed.TotalSeconds / decodeSteps;
        });
        return new RunnerSpeed(name, BenchTiming.Median(prefill), prefillTokens, BenchTiming.Median(decode), weightBytesPerToken);
    }

    /// <summary>Weight bytes ONNX Runtime reads for one decoded token: blocks and scales of N-bit weights, 4 bytes per float weight, no embedding gather (but the tied head).</summary>
    public static long OnnxWeightBytesPerToken(Model.HymbaConfig config, OnnxExportType type, int blockSize) =>
        OnnxPrecision.Plan(config, type)
            .Where(w => w.Tensor.Role != Model.StoredRole.TokenEmbedding || config.TieWordEmbeddings)
            .Where(w => w.Tensor.Role != Model.StoredRole.MetaTokens)
            .Sum(w => w.Kind == OnnxWeightKind.NBits ? w.Bytes(blockSize) : w.Tensor.ElementCount * 4);

    /// <summary>
    /// Bytes read + written per second (STREAM's copy convention) by a parallel copy of 2 x 256 MB buffers, the
    /// best of 7: a bound is what the machine can do, and other tenants of a shared host only ever slow it.
    /// </summary>
    public static double MeasureBandwidth(int threads)
    {
        const int Bytes = 256 << 20;
        var source = GC.AllocateUninitializedArray<byte>(Bytes);
        var target = GC.AllocateUninitializedArray<byte>(Bytes);
        new Random(1).NextBytes(source);
        target.AsSpan().Fill(1);
        int parts = Math.Max(1, threads);
        var times = BenchTiming.Time(7, () =>
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
            {
                int chunk = Bytes / parts, start = p * chunk, length = p == parts - 1 ? Bytes - start : chunk;
                source.AsSpan(start, length).CopyTo(target.AsSpan(start, length));
            });
        });
        return 2.0 * Bytes / times.Min();
    }
}
