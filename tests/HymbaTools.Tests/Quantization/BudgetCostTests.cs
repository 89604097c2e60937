using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Quantization.BitBudget;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Quantization;

/// <summary>The bit budget's cost measures: what each records, that the layer-output error ranks as KL does, and that none depends on --threads.</summary>
public class BudgetCostTests
{
    private static TensorCosts Measure(HymbaCheckpoint ckpt, CostMeasure measure, RoundingMethod method, long[][] chunks, int threads = 1)
    {
        using (ComputeThreads.Use(threads))
            return BudgetCostMeasurement.Measure(ckpt, new BudgetCostRequest { Chunks = chunks, Measure = measure, Method = method });
    }

    private static long[][] Chunks(HymbaConfig config) => GptqTests.RandomChunks(3, 48, config.VocabSize, 17);

    [Fact]
    public void Rank_correlation_is_spearmans_with_mean_ranks_for_ties()
    {
        Assert.Equal(1.0, CostAgreement.RankCorrelation([1, 2, 3, 4], [10, 20, 25, 1000]), 12);
        Assert.Equal(-1.0, CostAgreement.RankCorrelation([1, 2, 3, 4], [4, 3, 2, 1]), 12);
        // Ranks (1, 2.5, 2.5, 4) and (1, 2, 3, 4): Pearson of the ranks.
        double expected = (-1.5 * -1.5 + 0 * -0.5 + 0 * 0.5 + 1.5 * 1.5) / Math.Sqrt((1.5 * 1.5 * 2) * (1.5 * 1.5 * 2 + 0.5 * 0.5 * 2));
        Assert.Equal(expected, CostAgreement.RankCorrelation([1, 5, 5, 9], [1, 2, 3, 4]), 12);
    }

    /// <summary>
    /// The costs say what they measured: the proxy and the layer-output error round plainly whatever the export's
    /// method (cost_rounding=rtn), KL with GPTQ rounds with GPTQ; the plan's metadata names the measure.
    /// </summary>
    [Fact]
    public void Costs_record_the_measure_and_the_rounding_they_were_measured_with()
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA);
        var chunks = Chunks(ckpt.Config);
        var layer = Measure(ckpt, CostMeasure.LayerOutput, RoundingMethod.Gptq, chunks);
        var proxy = Measure(ckpt, CostMeasure.Proxy, RoundingMethod.Gptq, chunks);
        var kl = Measure(ckpt, CostMeasure.Kl, RoundingMethod.Gptq, chunks);
        Assert.Equal((CostMeasure.LayerOutput, RoundingMethod.Rtn), (layer.Measure, layer.Method));
        Assert.Equal((CostMeasure.Proxy, RoundingMethod.Rtn), (proxy.Measure, proxy.Method));
        Assert.Equal((CostMeasure.Kl, RoundingMethod.Gptq), (kl.Measure, kl.Method));
        var lines = BitBudgetPlan.Create(ckpt.Config, 12, layer, "x").MetadataLines();
        Assert.Contains("cost=layer", lines);
        Assert.Contains("cost_rounding=rtn", lines);
        Assert.Contains("cost_rounding=gptq", BitBudgetPlan.Create(ckpt.Config, 12, kl, "x").MetadataLines());
    }

    /// <summary>
    /// On a fixture the layer-output error orders the (tensor, type) pairs as KL does, and better than the
    /// importance-weighted squared error within a type (the tensors' sensitivities, which is what a budget decides
    /// on); the same bits at 1 and 3 threads.
    /// </summary>
    [Fact]
    public void The_layer_output_error_ranks_as_kl_does_and_is_the_same_at_any_thread_count()
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA);
        var config = ckpt.Config;
        var chunks = Chunks(config);
        var kl = Measure(ckpt, CostMeasure.Kl, RoundingMethod.Rtn, chunks);
        var layer = Measure(ckpt, CostMeasure.LayerOutput, RoundingMethod.Rtn, chunks);
        var proxy = Measure(ckpt, CostMeasure.Proxy, RoundingMethod.Rtn, chunks);
        var byLayer = CostAgreement.Compare(config, kl, layer, []);
        var byProxy = CostAgreement.Compare(config, kl, proxy, []);
        Assert.True(byLayer.Spearman > 0.9, $"layer-output error: Spearman {byLayer.Spearman:F3} (measured 0.934 when written; the proxy 0.636)");
        double layerWithin = byLayer.WithinType.Average(w => w.Spearman), proxyWithin = byProxy.WithinType.Average(w => w.Spearman);
        Assert.True(layerWithin > proxyWithin && layerWithin > 0.7, $"within a type: layer-output error {layerWithin:F3}, proxy {proxyWithin:F3} (0.872 and 0.213 when written)");

        var three = Measure(ckpt, CostMeasure.LayerOutput, RoundingMethod.Rtn, chunks, threads: 3);
        foreach (var t in HymbaStorageLayout.For(config).Where(CandidateTypes.IsChosen))
            foreach (var type in CandidateTypes.For(t))
                Assert.Equal(layer.Get(t.Name, type), three.Get(t.Name, type));
    }
}
