using HymbaTools.Model;
using HymbaTools.Quantization.Calibration;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.BitBudget;

/// <summary>
/// A cost for models too large for a forward per tensor and type (<see cref="KlCostMeasurer"/>): the squared error
/// the rounded tensor causes in its decoder layer's output (the residual stream after the layer), per calibration
/// position, with only that tensor rounded. One pass over the layers: each layer's outputs are computed once as they
/// are and once per tensor and measured type, on the first <see cref="MeasuredChunks"/> chunks. For a GGUF budget the
/// tensor is measured at its smallest type only and the other types' costs are that error scaled by the tensor's
/// importance-weighted squared error (<see cref="ProxyCostMeasurer"/>) at each type; other budgets measure every type.
/// The error of a weight that writes to the residual stream (mixer_out, ffn_down) is its own output error plus what
/// the rest of the layer makes of it; a weight inside the layer (in_proj's blocks, x_proj, gate, up) is measured after
/// the attention, SSM, norms and products it passes through, which the importance-weighted error alone cannot see
/// (example model: Spearman 0.94 against KL within a type, against 0.43 for that error; README). The embedding and the
/// head, whose error reaches the logits without a layer between, keep the importance-weighted error.
/// </summary>
internal static class LayerOutputCostMeasurer
{
    /// <summary>Chunks the per-tensor passes run on (the importance statistics use every chunk).</summary>
    public const int MeasuredChunks = 2;

    public static TensorCosts Measure(IHymbaTensorSource source, long[][] chunks, BudgetChoices choices, ImportanceMatrix? importance, Func<StoredTensor, RowSource> rowsOf,
        Action<StoredTensor> release, IProgress<(long Done, long Total)>? progress = null, Action? releasePages = null)
    {
        var c = source.Config;
        List<GgmlType> TypesOf(StoredTensor t) => [.. choices.TypesOf(t).Where(x => x != GgmlType.F16)];
        var chosen = choices.Tensors.Where(t => TypesOf(t).Count > 0).ToList();
        if (!choices.ScalesByProxy && chosen.Any(t => t.Layer < 0)) throw new ArgumentException("the embedding and head are measured with the ggml proxy only");
        var costs = new TensorCosts(CostMeasure.LayerOutput, RoundingMethod.Rtn);
        bool weightedSearch = importance is not null;
        var statistics = new ActivationStatistics { Chunks = chunks.Length };
        int measured = Math.Min(MeasuredChunks, chunks.Length);
        long done = 0, total = chosen.Count;
        using var pin = TorchThreadPin.Single();
        using var grad = no_grad();
        using var activations = new CalibrationActivations(source, chunks);
        long positions = measured * (activations.MetaSteps + chunks[0].Length);
        foreach (var plan in c.Layers)
        {
            var weights = HymbaWeights.LoadLayer(source, plan);
            try
            {
                var tensors = chosen.Where(t => t.Layer == plan.Index).ToList();
                var errors = new Dictionary<string, (float[] Values, double[] Errors)>(StringComparer.Ordinal);
                var reference = activations.Outputs(weights, measured);
                try
                {
                    foreach (var t in tensors)
                    {
                        var slot = WeightSlots.Of(weights, t, c) ?? throw new InvalidOperationException($"{t.Name} has no weight in the forward pass");
                        var original = slot.Read();
                        var types = TypesOf(t);
                        var measuredErrors = new double[choices.ScalesByProxy ? 1 : types.Count];
                        for (int k = 0; k < measuredErrors.Length; k++)
                        {
                            Common.Interruption.ThrowIfRequested();
                            slot.Write(choices.RoundTrip(t, types[k], original, weightedSearch ? importance : null));
                            var outputs = activations.Outputs(weights, measured);
                            slot.Write(original);
                            for (int i = 0; i < outputs.Length; i++)
                            {
                                using var scope = NewDisposeScope();
                                measuredErrors[k] += TorchScalars.Square(outputs[i].sub(reference[i]).to(ScalarType.Float64)).sum().item<double>();
                                outputs[i].Dispose();
                            }
                            measuredErrors[k] /= positions;
                        }
                        errors[t.Name] = (original, measuredErrors);
                    }
                }
                finally
                {
                    foreach (var r in reference) r.Dispose();
                }
                activations.Advance(weights, new ImportanceRecording(statistics, chunks.Length));
                foreach (var t in tensors)
                {
                    var (values, measuredErrors) = errors[t.Name];
                    var types = TypesOf(t);
                    if (!choices.ScalesByProxy)
                        for (int k = 0; k < types.Count; k++) costs.Set(t.Name, types[k], measuredErrors[k]);
                    else
                    {
                        int cols = checked((int)t.Columns);
                        var weighting = importance?.For(t.Name, cols) ?? statistics.MeanSquares(t.Layer, ImportanceMatrix.PointOf(t.Role, c.TieWordEmbeddings)!.Value);
                        var proxies = ProxyCostMeasurer.Measure(t, cols, types, (first, count, destination) => values.AsSpan(checked((int)(first * cols)), checked((int)(count * cols))).CopyTo(destination), weighting, weightedSearch);
                        // The smallest type's measured error, and the others in the proportion of their proxies.
                        for (int k = 0; k < types.Count; k++) costs.Set(t.Name, types[k], proxies[0] > 0 ? measuredErrors[0] * proxies[k] / proxies[0] : measuredErrors[0]);
                    }
                    progress?.Report((++done, total));
                }
            }
            finally
            {
                HymbaWeights.DisposeLayer(weights, ownsTensors: true);
                releasePages?.Invoke();
            }
        }
        // The head's inputs, for the embedding and head (their error reaches the logits directly).
        using (var scope = NewDisposeScope())
        {
            var norm = TorchMemory.Create([c.HiddenSize], span => source.CopyToFloat32(HymbaTensorCatalog.FinalNorm, span));
            foreach (var hidden in activations.Hidden)
                statistics.Record(-1, ActivationPoint.HeadInput, RmsNorm.Apply(hidden, norm, c.RmsNormEps)[.., TensorIndex.Slice(activations.MetaSteps, null), ..]);
        }
        var headImportance = importance ?? ImportanceMatrix.FromStatistics(c, statistics, "calibration", (long)chunks.Length * chunks[0].Length);
        var head = chosen.Where(t => t.Layer < 0).ToList();
        if (head.Count == 0) return costs;
        var proxy = ProxyCostMeasurer.Measure(head, rowsOf, release, headImportance, weightedSearch);
        foreach (var t in head)
        {
            foreach (var type in CandidateTypes.For(t).Where(x => x != GgmlType.F16)) costs.Set(t.Name, type, proxy.Get(t.Name, type));
            progress?.Report((++done, total));
        }
        return costs;
    }
}
