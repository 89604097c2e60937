using HymbaTools.Runtime;
using System.Globalization;
using HymbaTools.Model;

namespace HymbaTools.Verification;

/// <summary>
/// Runs golden cases or self-checks against any <see cref="IHymbaRunner"/>. The comparison code only sees
/// logits, so the same checks serve the HF forward, GGUF files and ONNX exports.
/// </summary>
public static class Verifier
{
    public const double DefaultTolerance = 1e-4;

    public static VerifyReport AgainstGolden(IHymbaRunner runner, GoldenData golden, double tolerance)
    {
        var (bound, note, caseTolerance) = ReferenceBound(runner, tolerance);
        var cases = new List<VerifyCase>();
        foreach (var fc in golden.ForwardCases)
        {
            var logits = runner.Forward(fc.InputIds);
            var cmp = LogitComparison.Compare(fc.Logits, logits.Data, fc.Vocab);
            cases.Add(new VerifyCase(fc.Name, "forward", cmp, cmp.MaxAbsDiff <= bound,
                $"B={fc.InputIds.Length} T={fc.InputIds[0].Length}" + note, caseTolerance));
        }
        foreach (var dc in golden.DecodeCases)
        {
            if (dc.FullForwardLogits is not null)
                cases.Add(DecodeCase(runner, dc, DecodeWindowMode.MatchFullForward, dc.FullForwardLogits, "decode", bound, note, caseTolerance));
            if (dc.StepLogits is not null)
                cases.Add(DecodeCase(runner, dc, DecodeWindowMode.OfficialGenerate, dc.StepLogits, "decode-official", bound, note, caseTolerance));
        }
        return new VerifyReport(runner.Description, golden.Path, tolerance, cases, null);
    }

    /// <summary>
    /// The bound for comparing a runner with exact float32 logits: the tolerance, or the runner's own when it keeps
    /// state in fewer bits and that is looser (then named in each case's detail and carried as the case's tolerance).
    /// </summary>
    private static (double Bound, string Note, double? CaseTolerance) ReferenceBound(IHymbaRunner runner, double tolerance) =>
        runner.ReferenceTolerance is { } own && own.Tolerance > tolerance
            ? (own.Tolerance, $"; tolerance {own.Tolerance.ToString(CultureInfo.InvariantCulture)} ({own.Reason})", own.Tolerance)
            : (tolerance, "", null);

    /// <summary>Teacher-forced decode: prefill the prompt, then feed generated_ids[i-1] at step i.</summary>
    private static VerifyCase DecodeCase(IHymbaRunner runner, GoldenDecodeCase dc, DecodeWindowMode mode, float[] reference, string kind, double bound, string note, double? caseTolerance)
    {
        var steps = DecodeLogits(runner, dc.PromptIds, dc.GeneratedIds, mode);
        var cmp = LogitComparison.Compare(reference, steps, dc.Vocab);
        string detail = (mode == DecodeWindowMode.MatchFullForward ? "vs full_forward_logits" : "vs step_logits (official generate)") +
                        $", prompt {dc.PromptIds.Length}, steps {dc.GeneratedIds.Length}" + note;
        return new VerifyCase(dc.Name, kind, cmp, cmp.MaxAbsDiff <= bound, detail, caseTolerance);
    }

    public static float[] DecodeLogits(IHymbaRunner runner, long[] prompt, long[] generated, DecodeWindowMode mode)
    {
        int vocab = runner.Config.VocabSize;
        var result = new float[generated.Length * vocab];
        using var session = runner.StartDecode(1, mode);
        var prefill = session.Step([prompt]);
        prefill.Row(0, prefill.Tokens - 1).CopyTo(result);
        for (int i = 1; i < generated.Length; i++)
        {
            var step = session.Step([[generated[i - 1]]]);
            step.Row(0, 0).CopyTo(result.AsSpan(i * vocab));
        }
        return result;
    }

    /// <summary>
    /// Checks that need no reference: finite logits, prefill + decode equal to the full forward (past the
    /// sliding window), batch rows equal single-row runs, and bitwise-identical reruns.
    /// </summary>
    public static VerifyReport SelfCheck(IHymbaRunner runner, double tolerance, int seed = 1234)
    {
        var c = runner.Config;
        int length = Math.Clamp((c.SlidingWindow ?? 16) * 2 + 5, 8, 64);
        var rng = new Random(seed);
        long[] RandomIds(int n) => Enumerable.Range(0, n).Select(_ => (long)rng.Next(c.VocabSize)).ToArray();
        var row0 = RandomIds(length);
        var row1 = RandomIds(length);
        var cases = new List<VerifyCase>();

        var full = runner.Forward([row0, row1]);
        long nonFinite = full.Data.LongCount(v => !float.IsFinite(v));
        cases.Add(new VerifyCase("finite", "self", null, nonFinite == 0, nonFinite == 0 ? $"{full.Data.Length:N0} logits, all finite" : $"{nonFinite} NaN/Inf logits"));

        var single0 = runner.Forward([row0]);
        var single1 = runner.Forward([row1]);
        var batchRows = new float[full.Data.Length];
        single0.Data.CopyTo(batchRows, 0);
        single1.Data.CopyTo(batchRows, single0.Data.Length);
        var batchCmp = LogitComparison.Compare(batchRows, full.Data, c.VocabSize);
        double consistency = runner.ConsistencyTolerance ?? tolerance;
        string kernelNote = runner.ConsistencyTolerance is { } t ? $"; tolerance {t.ToString(CultureInfo.InvariantCulture)} (int8 activations: kernels differ by row count)" : "";
        cases.Add(new VerifyCase("batch-vs-single", "self", batchCmp, batchCmp.MaxAbsDiff <= consistency, "rows of a batch of 2 vs two batch-1 runs" + kernelNote, runner.ConsistencyTolerance));

        int prefill = Math.Max(1, length / 3);
        // Step i feeds token prefill+i-1 and predicts from position prefill-1+i, as in the golden decode cases.
        var decoded = DecodeLogits(runner, row0[..prefill], row0[prefill..], DecodeWindowMode.MatchFullForward);
        var expected = single0.Data.AsSpan((prefill - 1) * c.VocabSize, (length - prefill) * c.VocabSize);
        var decodeCmp = LogitComparison.Compare(expected, decoded, c.VocabSize);
        cases.Add(new VerifyCase("prefill+decode", "self", decodeCmp, decodeCmp.MaxAbsDiff <= consistency,
            $"prefill {prefill} then {length - prefill} decode steps vs full forward of {length} (window {c.SlidingWindow?.ToString(CultureInfo.InvariantCulture) ?? "none"})" + kernelNote, runner.ConsistencyTolerance));

        var rerun = runner.Forward([row0]);
        bool identical = rerun.Data.AsSpan().SequenceEqual(single0.Data);
        cases.Add(new VerifyCase("deterministic", "self", null, identical, identical ? "rerun is bitwise identical" : "rerun differs"));

        var data = single0.Data;
        double mean = data.Average(v => (double)v);
        double std = Math.Sqrt(data.Average(v => ((double)v - mean) * ((double)v - mean)));
        string summary = $"logits over {length} random tokens: mean {mean:F4}, std {std:F4}, min {data.Min():F4}, max {data.Max():F4}; " +
                         $"argmax of the last position {single0.ArgMax(0, length - 1)}";
        return new VerifyReport(runner.Description, null, tolerance, cases, summary);
    }

    /// <summary>
    /// The candidate against the model it was made from, on the self-check's random tokens: a gate (max abs
    /// within tolerance) when the candidate should be lossless, otherwise the measured cost (KL, top-1) as information.
    /// </summary>
    public static VerifyCase AgainstSource(IHymbaRunner source, IHymbaRunner candidate, double tolerance, bool lossless, int seed = 1234)
    {
        var c = candidate.Config;
        var rng = new Random(seed);
        int length = Math.Clamp((c.SlidingWindow ?? 16) * 2 + 5, 8, 64);
        long[] ids = Enumerable.Range(0, length).Select(_ => (long)rng.Next(c.VocabSize)).ToArray();
        var cmp = LogitComparison.Compare(source.Forward([ids]).Data, candidate.Forward([ids]).Data, c.VocabSize);
        var (bound, note, caseTolerance) = ReferenceBound(candidate, tolerance);
        string detail = $"vs {source.Description} on {length} random tokens: mean KL {cmp.MeanKl.ToString("0.###e+0", CultureInfo.InvariantCulture)}" +
                        (lossless ? note : " (quantized: reported, not gated)");
        return new VerifyCase("source", "compare", cmp, !lossless || cmp.MaxAbsDiff <= bound, detail, lossless ? caseTolerance : null);
    }
}
