using System.Diagnostics;
using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Runtime;
using GenAi = Microsoft.ML.OnnxRuntimeGenAI;

namespace HymbaTools.Benchmarks;

/// <summary>
/// Decode speed after a long context, as llama-bench's <c>-d</c> measures it: the context is processed first (not
/// timed, in chunks so that no call holds a context-long score matrix), then single tokens are decoded and timed. This
/// is where Hymba's small cache shows: sliding layers read a bounded window while a Llama reads every key. Also the
/// state bytes each runtime holds there.
/// </summary>
internal static class DepthBenchmark
{
    /// <summary>Context tokens before the timed ones, decoded tokens per round, tokens per prefill call.</summary>
    public sealed record Workload(int Depth, int DecodeTokens, int Chunk, int VocabSize)
    {
        private readonly long[] _ids = RandomIds(Depth + DecodeTokens, VocabSize);
        public long[] Context => _ids[..Depth];
        public long Next(int step) => _ids[Depth + step];
        public IEnumerable<long[]> ContextChunks() => Enumerable.Range(0, (Depth + Chunk - 1) / Chunk).Select(c => _ids[(c * Chunk)..Math.Min(Depth, (c + 1) * Chunk)]);

        private static long[] RandomIds(int count, int vocab)
        {
            var rng = new Random(31);
            return [.. Enumerable.Range(0, count).Select(_ => (long)rng.Next(3, vocab))];
        }
    }

    /// <summary>One runtime's figure in one round.</summary>
    public sealed record Sample(double DecodeTokensPerSecond);

    /// <summary>
    /// hymba's runner: the context processed once, its state kept (as float32 data, which holds float16 exactly); each
    /// round decodes from a fresh copy of it, so every round starts at the same depth.
    /// </summary>
    public sealed class HymbaSide
    {
        private readonly OnnxRunner _runner;
        private readonly Workload _work;
        private readonly IReadOnlyDictionary<string, (float[] Data, long[] Shape)> _state;

        public HymbaSide(OnnxRunner runner, Workload work)
        {
            _runner = runner;
            _work = work;
            using var session = (OnnxDecodeSession)runner.StartDecode(1, Model.DecodeWindowMode.MatchFullForward);
            foreach (var chunk in work.ContextChunks()) session.Step([chunk]);
            StateBytes = session.StateBytes;
            _state = session.SaveState();
        }

        /// <summary>Bytes of the decoding state at the depth, as the runner feeds it to the next step.</summary>
        public long StateBytes { get; }

        public Sample Measure()
        {
            using var session = _runner.StartFrom(1, _work.Depth, _state);
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < _work.DecodeTokens; i++) session.Step([[_work.Next(i)]]);
            return new Sample(_work.DecodeTokens / clock.Elapsed.TotalSeconds);
        }
    }

    /// <summary>
    /// onnxruntime-genai: one generator takes the context in chunks (AppendTokens per chunk), and every round decodes
    /// the next tokens of the same sequence (genai cannot restore a recurrent state), so round r starts r × decode
    /// tokens deeper: under 1 % of an 8K context for 3 rounds of 32.
    /// </summary>
    public sealed class GenAiSide : IDisposable
    {
        private readonly GenAi.Generator _generator;
        private readonly Workload _work;

        public GenAiSide(GenAiBenchmark genai, OnnxRunner runner, Workload work, int rounds)
        {
            _work = work;
            // max_length counts every token of the sequence: the context and each GenerateNextToken's token (the
            // warm-up's and every round's); one more would exceed a context that bench onnx --depth filled exactly.
            _generator = genai.NewGenerator(work.Depth + (rounds + 1) * work.DecodeTokens);
            foreach (var chunk in work.ContextChunks())
            {
                Interruption.ThrowIfRequested();
                _generator.AppendTokens([.. chunk.Select(id => (int)id)]);
            }
            // The presents genai allocated for the last call: what it holds at the depth.
            StateBytes = runner.State.States.Sum(s =>
            {
                using var present = _generator.GetOutput(s.Present);
                return present.NumElements() * s.ElementBytes;
            });
        }

        public long StateBytes { get; }

        public Sample Measure()
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < _work.DecodeTokens; i++)
            {
                Interruption.ThrowIfRequested();
                _generator.GenerateNextToken();
            }
            return new Sample(_work.DecodeTokens / clock.Elapsed.TotalSeconds);
        }

        public void Dispose() => _generator.Dispose();
    }

    /// <summary>Each runtime's median decode rate and state bytes at the depth, with ratios to llama.cpp's where it ran.</summary>
    public static string Table(Workload work, IReadOnlyList<(string Name, IReadOnlyList<Sample> Rounds, long StateBytes, string StateNote)> runtimes,
        (string Label, IReadOnlyList<double> Rounds, long StateBytes, string StateNote)? llama)
    {
        var inv = CultureInfo.InvariantCulture;
        var headers = new List<string> { "runtime", $"decode tokens/s at depth {work.Depth:N0}", "state bytes", "state" };
        double? llamaRate = llama is { } l ? BenchTiming.Median(l.Rounds) : null;
        if (llamaRate is not null) headers.Add("decode / llama");
        var table = new TextTable([.. headers]);
        foreach (var (name, rounds, bytes, note) in runtimes)
        {
            double rate = BenchTiming.Median([.. rounds.Select(r => r.DecodeTokensPerSecond)]);
            var row = new List<object> { name, rate.ToString("F2", inv), bytes, note };
            if (llamaRate is { } baseline) row.Add((rate / baseline).ToString("F2", inv) + "x");
            table.Add([.. row]);
        }
        if (llama is { } ll)
            table.Add(ll.Label, llamaRate!.Value.ToString("F2", inv), ll.StateBytes, ll.StateNote, "1.00x");
        return table.ToString() +
               $"depth: {work.Depth:N0} context tokens processed first (untimed, {work.Chunk} per call), then {work.DecodeTokens} tokens decoded at batch 1 and timed; " +
               "ratios: decode rate over llama's (higher is better)\n";
    }
}
