using System.Diagnostics;
using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Formats.Onnx;
using HymbaTools.Runtime;

namespace HymbaTools.Benchmarks;

/// <summary>
/// What a user of an export feels, per runtime: the first call on a short prompt (the prompt's latency), prefill
/// tokens/s of a long prompt and decode tokens/s at batch 1 after the short prompt. Measured for hymba's own runner,
/// for onnxruntime-genai's Generator (what deployers run) and for the TorchSharp reference; llama.cpp's llama-bench
/// supplies the same figures for a same-size Llama (<see cref="LlamaBenchResult"/>).
/// </summary>
internal static class OnnxBenchmark
{
    /// <summary>The three figures of one runtime in one round.</summary>
    public sealed record Sample(double FirstCallSeconds, double PrefillTokensPerSecond, double DecodeTokensPerSecond);

    /// <summary>The shape of the measurement: prompt, long prefill and decode lengths.</summary>
    public sealed record Workload(int PromptTokens, int PrefillTokens, int DecodeTokens, int VocabSize)
    {
        private readonly long[] _ids = RandomIds(Math.Max(PromptTokens + DecodeTokens, PrefillTokens), VocabSize);
        public long[] Prompt => _ids[..PromptTokens];
        public long[] Prefill => _ids[..PrefillTokens];
        public long Next(int step) => _ids[(PromptTokens + step) % _ids.Length];

        private static long[] RandomIds(int count, int vocab)
        {
            var rng = new Random(29);
            return [.. Enumerable.Range(0, count).Select(_ => (long)rng.Next(3, vocab))];
        }
    }

    /// <summary>One round with any runner (hymba's ONNX runner or the reference): a fresh decode session per figure.</summary>
    public static Sample Measure(IHymbaRunner runner, Workload work)
    {
        double firstCall, decode;
        using (var session = runner.StartDecode(1, Model.DecodeWindowMode.MatchFullForward))
        {
            var clock = Stopwatch.StartNew();
            session.Step([work.Prompt]);
            firstCall = clock.Elapsed.TotalSeconds;
            clock.Restart();
            for (int i = 0; i < work.DecodeTokens; i++) session.Step([[work.Next(i)]]);
            decode = work.DecodeTokens / clock.Elapsed.TotalSeconds;
        }
        using (var session = runner.StartDecode(1, Model.DecodeWindowMode.MatchFullForward))
        {
            var clock = Stopwatch.StartNew();
            session.Step([work.Prefill]);
            return new Sample(firstCall, work.PrefillTokens / clock.Elapsed.TotalSeconds, decode);
        }
    }

    /// <summary>Weight bytes ONNX Runtime reads for one decoded token: blocks and scales of N-bit weights, 4 bytes per float weight, no embedding gather (but the tied head).</summary>
    public static long OnnxWeightBytesPerToken(Model.HymbaConfig config, OnnxExportType type, int blockSize) =>
        OnnxPrecision.Plan(config, type)
            .Where(w => w.Tensor.Role != Model.StoredRole.TokenEmbedding || config.TieWordEmbeddings)
            .Sum(w => w.Kind == OnnxWeightKind.NBits ? w.Bytes(blockSize) : w.Tensor.ElementCount * 4);

    /// <summary>Memory read bandwidth and how it was measured (for the decode bound).</summary>
    public sealed record Bandwidth(double BytesPerSecond, long BufferBytes, long? LastLevelCacheBytes, int Threads, int Passes)
    {
        public string Description =>
            string.Create(CultureInfo.InvariantCulture, $"{BytesPerSecond / 1e9:F1} GB/s: median of {Passes} passes of {Threads} thread(s) summing a {BufferBytes >> 20} MiB buffer") +
            (LastLevelCacheBytes is { } llc ? string.Create(CultureInfo.InvariantCulture, $" ({(double)BufferBytes / llc:F0}x the {llc >> 20} MiB last-level cache, so read from DRAM)") : "");
    }

    /// <summary>
    /// What the threads can stream from DRAM: a vectorised sum over a buffer many times the last-level cache (so every
    /// pass reads memory, not cache), each thread over its own part, the median pass reported (a best pass overstates
    /// what a long decode sees on a shared host). Reading is what decode does with weights; a copy would also write.
    /// </summary>
    public static Bandwidth MeasureReadBandwidth(int threads)
    {
        long? llc = LastLevelCacheBytes();
        long bytes = Math.Max(2L << 30, (llc ?? 0) * 4);
        long floats = bytes / sizeof(float);
        var parts = Enumerable.Range(0, threads).Select(_ => GC.AllocateUninitializedArray<float>(checked((int)(floats / threads)))).ToArray();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, p => parts[p].AsSpan().Fill(1f));
        float sink = 0;
        const int Passes = 7;
        var times = BenchTiming.Time(Passes, () =>
        {
            var sums = new float[threads];
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, p =>
            {
                var acc = System.Numerics.Vector<float>.Zero;
                foreach (var v in System.Runtime.InteropServices.MemoryMarshal.Cast<float, System.Numerics.Vector<float>>(parts[p].AsSpan())) acc += v;
                sums[p] = System.Numerics.Vector.Sum(acc);
            });
            sink += sums.Sum();
        });
        GC.KeepAlive(sink);
        return new Bandwidth(parts.Sum(p => (long)p.Length) * sizeof(float) / BenchTiming.Median(times), bytes, llc, threads, Passes);
    }

    /// <summary>
    /// The last-level cache in bytes as the C library reports it (sysconf, from CPUID: the whole L3 of the processor,
    /// which on large server parts reaches hundreds of MB), or null where it does not say.
    /// </summary>
    private static long? LastLevelCacheBytes()
    {
        const int LevelThreeCacheSize = 194; // _SC_LEVEL3_CACHE_SIZE in glibc
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            long bytes = SystemConfiguration(LevelThreeCacheSize);
            return bytes > 0 ? bytes : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return null; }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "sysconf")]
    private static extern long SystemConfiguration(int name);

    /// <summary>The medians of every runtime's rounds side by side, with ratios to llama.cpp where it ran.</summary>
    public static string Table(IReadOnlyList<(string Name, IReadOnlyList<Sample> Rounds, long? WeightBytesPerToken)> runtimes, LlamaBenchResult.Figures? llama,
        Bandwidth bandwidth, Workload work)
    {
        var inv = CultureInfo.InvariantCulture;
        var headers = new List<string> { "runtime", $"first call, {work.PromptTokens} tokens", $"prefill {work.PrefillTokens}: tokens/s", "decode tokens/s", "decode bound tokens/s" };
        if (llama is not null) headers.AddRange(["first call / llama", "prefill / llama", "decode / llama"]);
        var table = new TextTable([.. headers]);
        foreach (var (name, rounds, weightBytes) in runtimes)
        {
            double first = BenchTiming.Median([.. rounds.Select(r => r.FirstCallSeconds)]);
            double prefill = BenchTiming.Median([.. rounds.Select(r => r.PrefillTokensPerSecond)]);
            double decode = BenchTiming.Median([.. rounds.Select(r => r.DecodeTokensPerSecond)]);
            var row = new List<string>
            {
                name, string.Create(inv, $"{first * 1000:F0} ms"), prefill.ToString("F1", inv), decode.ToString("F2", inv),
                weightBytes is { } b ? (bandwidth.BytesPerSecond / b).ToString("F1", inv) : "-",
            };
            if (llama is not null)
                row.AddRange([(first / llama.FirstCallSeconds).ToString("F2", inv) + "x", (prefill / llama.PrefillTokensPerSecond).ToString("F2", inv) + "x",
                    (decode / llama.DecodeTokensPerSecond).ToString("F2", inv) + "x"]);
            table.Add([.. row]);
        }
        if (llama is not null)
        {
            var row = new List<string> { llama.Label, string.Create(inv, $"{llama.FirstCallSeconds * 1000:F0} ms"), llama.PrefillTokensPerSecond.ToString("F1", inv),
                llama.DecodeTokensPerSecond.ToString("F2", inv), (bandwidth.BytesPerSecond / llama.WeightBytes).ToString("F1", inv), "1.00x", "1.00x", "1.00x" };
            table.Add([.. row]);
        }
        return table.ToString() +
               $"first call: the first run of a fresh decoding state on a {work.PromptTokens}-token prompt (a loaded model); decode: {work.DecodeTokens} tokens at batch 1 after it; " +
               "ratios: first call time over llama's (lower is better), speeds over llama's (higher is better)\n" +
               $"decode bound = read bandwidth / weight bytes read per token; read bandwidth {bandwidth.Description}\n";
    }
}
