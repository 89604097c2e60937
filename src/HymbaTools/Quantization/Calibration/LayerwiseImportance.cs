using HymbaTools.Model;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Calibration;

/// <summary>
/// An importance matrix (mean squared input activation per column) collected one layer at a time, for models
/// too large to load whole: the same statistics as `hymba imatrix`, with memory bounded by one layer.
/// </summary>
internal static class LayerwiseImportance
{
    public static ImportanceMatrix Collect(IHymbaTensorSource source, long[][] chunks, string dataset, IProgress<(long Done, long Total)>? progress = null, Action? releasePages = null)
    {
        var c = source.Config;
        using var pin = TorchThreadPin.Single();
        using var grad = no_grad();
        using var activations = new CalibrationActivations(source, chunks);
        var statistics = new ActivationStatistics { Chunks = chunks.Length };
        foreach (var plan in c.Layers)
        {
            Common.Interruption.ThrowIfRequested();
            var weights = HymbaWeights.LoadLayer(source, plan);
            try { activations.Advance(weights, new ImportanceRecording(statistics, chunks.Length)); }
            finally
            {
                HymbaWeights.DisposeLayer(weights, ownsTensors: true);
                releasePages?.Invoke();
            }
            progress?.Report((plan.Index + 1, c.NumLayers + 1));
        }
        using (var scope = NewDisposeScope())
        {
            var norm = TorchMemory.Create([c.HiddenSize], span => source.CopyToFloat32(HymbaTensorCatalog.FinalNorm, span));
            foreach (var hidden in activations.Hidden)
                statistics.Record(-1, ActivationPoint.HeadInput, RmsNorm.Apply(hidden, norm, c.RmsNormEps)[.., TensorIndex.Slice(activations.MetaSteps, null), ..]);
        }
        progress?.Report((c.NumLayers + 1, c.NumLayers + 1));
        return ImportanceMatrix.FromStatistics(c, statistics, dataset, (long)chunks.Length * chunks[0].Length);
    }
}
