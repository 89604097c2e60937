using HymbaTools.Model;
using static TorchSharp.torch;
using HymbaTools.Quantization.BlockFormats;
using HymbaTools.Quantization.Calibration;

namespace HymbaTools.Quantization.Gptq;

/// <summary>Bytes of a stored tensor from another rounding than the codec's plain one (null: round plainly).</summary>
internal interface ITensorRounding
{
    /// <summary>The tensor's rows in its grid's layout; asked in layout order (a layer's tensors after the previous layer's).</summary>
    byte[]? TryRound(StoredTensor tensor);
}

/// <summary>
/// GPTQ over a checkpoint one decoder layer at a time, as a GGUF export asks for tensors (layer order): the
/// calibration chunks go through layer i in float32 while the Gram matrices of its inputs are summed, the
/// layer's weights are rounded with compensation, and the chunks go through the rounded layer to become layer
/// i+1's input (so later layers compensate earlier layers' error, as GPTQ does). Memory holds one layer, its
/// Gram matrices and the calibration activations, not the model. The embedding and an untied head are rounded
/// plainly: the head's inputs exist only after the last layer, while the file stores the embedding first.
/// Chunks run on worker threads and factors are solved in fixed blocks (see <see cref="CalibrationActivations"/>,
/// <see cref="HessianFactor"/>), so the bytes are the same at any --threads.
/// </summary>
internal sealed class GptqLayerWalk : ITensorRounding, IDisposable
{
    private readonly IHymbaTensorSource _source;
    private readonly HymbaConfig _config;
    private readonly ImportanceMatrix? _importance;
    private readonly int? _threads;
    private readonly IReadOnlyList<StoredTensor> _layout;
    private readonly Func<StoredTensor, BlockGrid?> _gridOf;
    private readonly CalibrationActivations _activations;
    private readonly IProgress<int>? _progress;
    private readonly Action? _releasePages;

    /// <summary>Weight each block's scale search by the calibration's own mean squared inputs (the diagonal of H / N) when no importance matrix is given.</summary>
    public bool CalibrationImportance { get; init; }
    private int _nextLayer;
    private Dictionary<string, byte[]> _current = new(StringComparer.Ordinal);

    public GptqLayerWalk(IHymbaTensorSource source, long[][] chunks, Func<StoredTensor, BlockGrid?> gridOf, ImportanceMatrix? importance, int? threads = null, IProgress<int>? progress = null, Action? releasePages = null)
    {
        _releasePages = releasePages;
        _source = source;
        _config = source.Config;
        _gridOf = gridOf;
        _importance = importance;
        _threads = threads;
        _progress = progress;
        _layout = HymbaStorageLayout.For(_config);
        using var pin = TorchThreadPin.Single();
        _activations = new CalibrationActivations(source, chunks, threads);
    }

    /// <summary>Layers whose Cholesky needed more than the initial damping.</summary>
    public List<string> Notes { get; } = [];

    /// <summary>A walk for a GGUF plan: each tensor in its planned ggml type's grid.</summary>
    /// <param name="releasePages">drops the source's mapped pages after each layer (resident memory stays at one layer)</param>
    public static GptqLayerWalk ForGgml(IHymbaTensorSource source, long[][] chunks, QuantizationPlan plan, ImportanceMatrix? importance, int? threads = null, Action? releasePages = null)
    {
        var types = plan.Tensors.ToDictionary(p => p.Tensor.Name, p => p.Type, StringComparer.Ordinal);
        return new GptqLayerWalk(source, chunks, t => types.TryGetValue(t.Name, out var type) && GgmlTypes.FitsRow(type, t.Columns) ? BlockGrid.ForGgml(type) : null, importance, threads, releasePages: releasePages);
    }

    public byte[]? TryRound(StoredTensor tensor)
    {
        if (tensor.Layer < 0) return null;
        if (tensor.Layer < _nextLayer - 1) throw new InvalidOperationException($"{tensor.Name} asked for after layer {_nextLayer - 1} (tensors must come in layer order)");
        while (_nextLayer <= tensor.Layer) Advance();
        return _current.Remove(tensor.Name, out var bytes) ? bytes : null;
    }

    /// <summary>Rounds the next layer's weights and moves the calibration activations through the rounded layer.</summary>
    private void Advance()
    {
        var c = _config;
        var plan = c.Layers[_nextLayer];
        using var pin = TorchThreadPin.Single();
        using var grad = no_grad();
        var weights = HymbaWeights.LoadLayer(_source, plan);
        var statistics = new ActivationStatistics { GramLayers = new HashSet<int> { plan.Index }, Threads = _threads ?? Common.ComputeThreads.Count };
        try
        {
            _activations.Probe(weights, statistics);
            var factors = new FactorCache(statistics);
            var importance = _importance ?? (CalibrationImportance ? ImportanceMatrix.FromStatistics(c, statistics, "calibration", 0) : null);
            _current = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            double maxDamping = 0;
            foreach (var t in _layout.Where(t => t.Layer == plan.Index && t.IsMatrix && HymbaStorageLayout.IsLinearWeight(t.Role)))
            {
                if (WeightSlots.Of(weights, t, c) is not { } slot) continue;
                if (_gridOf(t) is not { } grid) continue;
                var rounded = CompensatedTensorRounding.Round(t, grid, slot.Read(), factors, c, importance, _threads);
                if (rounded is null) continue;
                slot.Write(rounded.Dequantized);
                _current[t.Name] = rounded.Bytes;
                maxDamping = Math.Max(maxDamping, rounded.Damping);
            }
            if (maxDamping > HessianFactor.InitialDamping) Notes.Add($"layer {plan.Index}: damping up to {maxDamping:G3} x mean(diag H)");
            _activations.Advance(weights);
        }
        finally
        {
            statistics.ReleaseGrams(plan.Index);
            HymbaWeights.DisposeLayer(weights, ownsTensors: true);
            _releasePages?.Invoke();
            // A layer leaves hundreds of MB of large arrays (factors, weight copies) behind; with free RAM the GC
            // would keep them, and peak memory would grow with the model instead of staying at one layer.
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();   // tensors dropped without Dispose free their native memory here
            Common.NativeHeap.Trim();
        }
        _nextLayer++;
        _progress?.Report(_nextLayer);
    }

    public void Dispose() => _activations.Dispose();
}
