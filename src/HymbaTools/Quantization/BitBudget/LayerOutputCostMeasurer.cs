using HymbaTools.Model;
using HymbaTools.Quantization.Calibration;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.BitBudget;

/// <summary>
/// A cost for models too large for a forward per tensor and type (<see cref="KlCostMeasurer"/>): the squared error
/// the rounded tensor causes in its decoder layer's output (the residual stream after the layer), per calibration
/// position, with only that tensor rounded. One pass over the layers on the first <see cref="MeasuredChunks"/> calibration
/// chunks: each layer's outputs are computed once as they are (recording the importance of its inputs) and once per
/// tensor and measured type, those passes side by side on worker threads, each with its own copy of the changed weight
/// (the costs are the same at any --threads). For a GGUF budget the
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
    /// <summary>
    /// Calibration chunks the costs are measured on (the first ones). One ranks as well as more: on the example model
    /// Spearman against KL is 0.969 with one chunk of 256 tokens, 0.972 with two and 0.973 with four.
    /// </summary>
    public const int MeasuredChunks = 1;
    /// <summary>Rows the importance-weighted error reads when it scales a measured error to the other types (one in this many).</summary>
    private const int ProxyRowStride = 4;

    public static TensorCosts Measure(IHymbaTensorSource source, long[][] chunks, BudgetChoices choices, ImportanceMatrix? importance, Func<StoredTensor, RowSource> rowsOf,
        Action<StoredTensor> release, IProgress<(long Done, long Total)>? progress = null, Action? releasePages = null)
    {
        var c = source.Config;
        List<GgmlType> TypesOf(StoredTensor t) => [.. choices.TypesOf(t).Where(x => x != GgmlType.F16)];
        var chosen = choices.Tensors.Where(t => TypesOf(t).Count > 0).ToList();
        if (!choices.ScalesByProxy && chosen.Any(t => t.Layer < 0)) throw new ArgumentException("the embedding and head are measured with the ggml proxy only");
        var costs = new TensorCosts(CostMeasure.LayerOutput, RoundingMethod.Rtn);
        bool weightedSearch = importance is not null;
        var used = chunks.Take(MeasuredChunks).ToArray();
        var statistics = new ActivationStatistics { Chunks = used.Length };
        long done = 0, total = chosen.Count;
        int threads = Common.ComputeThreads.Count;
        using var pin = TorchThreadPin.Single();
        using var grad = no_grad();
        using var activations = new CalibrationActivations(source, used);
        long positions = used.Length * (activations.MetaSteps + used[0].Length);
        foreach (var plan in c.Layers)
        {
            var weights = HymbaWeights.LoadLayer(source, plan);
            var reference = activations.Outputs(weights, used.Length, new ImportanceRecording(statistics, used.Length));
            try
            {
                var tensors = chosen.Where(t => t.Layer == plan.Index).ToList();
                var work = tensors.SelectMany(t => TypesOf(t).Take(choices.ScalesByProxy ? 1 : int.MaxValue).Select(type => (Tensor: t, Type: type))).ToList();
                // One pass per (tensor, measured type), each on its own copy of the changed weight, the passes on worker threads.
                var errors = new double[work.Count];
                TorchWorkers.For(work.Count, threads, w =>
                {
                    Common.Interruption.ThrowIfRequested();
                    var (t, type) = work[w];
                    var slot = WeightSlots.Of(weights, t, c) ?? throw new InvalidOperationException($"{t.Name} has no weight in the forward pass");
                    using var scope = NewDisposeScope();
                    var changed = slot.Tensor.clone();
                    choices.RoundTripInPlace(t, type, new WeightSlot(changed, slot.FirstRow, slot.Rows, slot.Columns).Span(), weightedSearch ? importance : null);
                    var layer = weights.Replacing(slot.Tensor, changed);
                    for (int i = 0; i < used.Length; i++)
                    {
                        var output = activations.OutputOf(layer, i);
                        errors[w] += TorchScalars.Square(output.sub(reference[i]).to(ScalarType.Float64)).sum().item<double>();
                    }
                    errors[w] /= positions;
                });
                foreach (var t in tensors)
                {
                    var types = TypesOf(t);
                    int first = work.FindIndex(x => x.Tensor == t);
                    if (!choices.ScalesByProxy)
                        for (int k = 0; k < types.Count; k++) costs.Set(t.Name, types[k], errors[first + k]);
                    else
                    {
                        // The smallest type's measured error, and the others in the proportion of their importance-weighted errors (on every ProxyRowStride-th row).
                        int cols = checked((int)t.Columns);
                        var slot = WeightSlots.Of(weights, t, c)!.Value;
                        var weighting = importance?.For(t.Name, cols) ?? statistics.MeanSquares(t.Layer, ImportanceMatrix.PointOf(t.Role, c.TieWordEmbeddings)!.Value);
                        var proxies = ProxyCostMeasurer.Measure(t, cols, types, (r, count, destination) => slot.Span().Slice(checked((int)(r * cols)), checked((int)(count * cols))).CopyTo(destination),
                            weighting, weightedSearch, ProxyRowStride);
                        double error = errors[first];
                        for (int k = 0; k < types.Count; k++) costs.Set(t.Name, types[k], proxies[0] > 0 ? error * proxies[k] / proxies[0] : error);
                    }
                    progress?.Report((++done, total));
                }
                activations.Advance(weights);
            }
            finally
            {
                foreach (var r in reference) r.Dispose();
                HymbaWeights.DisposeLayer(weights, ownsTensors: true);
                releasePages?.Invoke();
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);   // the layer's weight copies (large arrays) before the next layer's
                Common.NativeHeap.Trim();
            }
        }
        // The head's inputs, for the embedding and head (their error reaches the logits directly).
        using (var scope = NewDisposeScope())
        {
            var norm = TorchMemory.Create([c.HiddenSize], span => source.CopyToFloat32(HymbaTensorCatalog.FinalNorm, span));
            foreach (var hidden in activations.Hidden)
                statistics.Record(-1, ActivationPoint.HeadInput, RmsNorm.Apply(hidden, norm, c.RmsNormEps)[.., TensorIndex.Slice(activations.MetaSteps, null), ..]);
        }
        var headImportance = importance ?? ImportanceMatrix.FromStatistics(c, statistics, "calibration", (long)used.Length * used[0].Length);
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
