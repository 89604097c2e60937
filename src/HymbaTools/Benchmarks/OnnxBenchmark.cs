using HymbaTools.Common;
using System.Diagnostics;
using System.Globalization;
using HymbaTools.Formats.Onnx;
using HymbaTools.Runtime;

namespace HymbaTools.Benchmarks;

/// <summary>
/// Prefill and decode speed of ONNX exports in ONNX Runtime next to the TorchSharp reference, measured in
/// the same run. Decode at batch 1 reads every weight once per token, so its ceiling is the machine's memory
/// read bandwidth divided by the weight bytes the runtime reads per token; the bandwidth is measured here too.
/// </summary>
internal static class OnnxBenchmark
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
            return $"threads {Threads}; memory read bandwidth {BandwidthBytesPerSecond / 1e9:F2} GB/s (parallel read-only pass over 1 GiB, best of 7)\n{t}" +
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
    /// Bytes per second of a parallel read-only pass (a vectorised sum) over a 1 GiB buffer, the best of 7:
    /// decode reads weights and writes almost nothing, and a bound is what the machine can do (other tenants of a
    /// shared host only ever slow it). A copy is not used: its writes cost a read of the target line as well, so
    /// it reports less than decode itself reaches.
    /// </summary>
    public static double MeasureReadBandwidth(int threads)
    {
        const long Floats = 1L << 28; // 1 GiB
        var buffer = GC.AllocateUninitializedArray<float>((int)Floats);
        Parallel.For(0, threads, p => buffer.AsSpan((int)(Floats / threads * p), (int)(Floats / threads)).Fill(1f));
        int parts = Math.Max(1, threads);
        float sink = 0;
        var times = BenchTiming.Time(7, () =>
        {
            var sums = new float[parts];
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
            {
                long chunk = Floats / parts;
                var span = buffer.AsSpan((int)(p * chunk), (int)chunk);
                var acc = System.Numerics.Vector<float>.Zero;
                var vectors = System.Runtime.InteropServices.MemoryMarshal.Cast<float, System.Numerics.Vector<float>>(span);
                foreach (var v in vectors) acc += v;
                sums[p] = System.Numerics.Vector.Sum(acc);
            });
            sink += sums.Sum();
        });
        GC.KeepAlive(sink);
        return Floats * 4.0 / times.Min();
    }
}
