using HymbaTools.Model;
using HymbaTools.Quantization.Calibration;

namespace HymbaTools.Quantization.BitBudget;

/// <summary>Rounds a tensor's float32 weights [rows, cols] to a type and returns what a decoder reads back.</summary>
internal delegate float[] RoundTrip(StoredTensor tensor, GgmlType type, float[] weights);

/// <summary>
/// Measures each tensor's cost in the model's output: with only that tensor rounded to a type (the rest float32),
/// the mean KL(reference || rounded) over every calibration position. One forward per tensor and type, so this is
/// for models whose forward is cheap (the example model: ~60 tensors x 6 types); larger models use the proxy.
/// libtorch runs on one thread, so the costs (and the plan) are the same at any --threads.
/// </summary>
internal static class KlCostMeasurer
{
    public static TensorCosts Measure(HymbaModel model, long[][] chunks, BudgetChoices choices, RoundTrip roundTrip, RoundingMethod method,
        IProgress<(long Done, long Total)>? progress = null)
    {
        using var pin = TorchThreadPin.Single();
        var reference = LogSoftmax(model.Forward(chunks));
        var costs = new TensorCosts(CostMeasure.Kl, method);
        var work = choices.Tensors.SelectMany(t => choices.TypesOf(t).Where(type => type != GgmlType.F16).Select(type => (t, type))).ToList();
        int done = 0;
        foreach (var group in work.GroupBy(w => w.t))
        {
            Common.Interruption.ThrowIfRequested();
            var t = group.Key;
            var slot = WeightSlots.Of(model.Weights, t) ?? throw new InvalidOperationException($"{t.Name} has no weight in the forward pass");
            var original = slot.Read();
            try
            {
                foreach (var (_, type) in group)
                {
                    slot.Write(roundTrip(t, type, original));
                    costs.Set(t.Name, type, MeanKl(reference, LogSoftmax(model.Forward(chunks))));
                    progress?.Report((++done, work.Count));
                }
            }
            finally { slot.Write(original); }
        }
        return costs;
    }

    private static (double[] LogProbs, int Vocab) LogSoftmax(LogitsResult logits)
    {
        int vocab = logits.Vocab;
        var data = logits.Data;
        var result = new double[data.Length];
        Parallel.For(0, data.Length / vocab, Common.ComputeThreads.ParallelOptions, p =>
        {
            var row = data.AsSpan(p * vocab, vocab);
            double max = double.NegativeInfinity;
            foreach (float v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (float v in row) sum += Math.Exp(v - max);
            double logZ = max + Math.Log(sum);
            for (int i = 0; i < vocab; i++) result[p * vocab + i] = row[i] - logZ;
        });
        return (result, vocab);
    }

    /// <summary>Mean over positions of Σ p (log p − log q), summed in position order (the same value at any thread count).</summary>
    private static double MeanKl((double[] LogProbs, int Vocab) reference, (double[] LogProbs, int Vocab) candidate)
    {
        int vocab = reference.Vocab, positions = reference.LogProbs.Length / vocab;
        var perPosition = new double[positions];
        Parallel.For(0, positions, Common.ComputeThreads.ParallelOptions, p =>
        {
            double kl = 0;
            for (int i = p * vocab, end = i + vocab; i < end; i++)
            {
                double lp = reference.LogProbs[i];
                kl += Math.Exp(lp) * (lp - candidate.LogProbs[i]);
            }
            perPosition[p] = Math.Max(0, kl);
        });
        double total = 0;
        foreach (double kl in perPosition) total += kl;
        return total / positions;
    }
}
