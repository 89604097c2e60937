using System.Globalization;
using HymbaTools.Model;
using HymbaTools.Quantization.BlockFormats;
using HymbaTools.Quantization.Calibration;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Gptq;

/// <summary>Bytes of a stored tensor from another rounding than the codec's plain one (null: round plainly).</summary>
internal interface ITensorRounding
{
    /// <summary>The tensor's rows in its grid's layout; asked in layout order (a layer's tensors after the previous layer's).</summary>
    byte[]? TryRound(StoredTensor tensor);
}

/// <summary>
/// GPTQ over a checkpoint one decoder layer at a time, as a GGUF export asks for tensors (layer order): the
/// calibration chunks go through layer i in float32 while the Hessians of its inputs are summed in place
/// (<see cref="HessianAccumulator"/>), each input point's factor is computed in place in its sum
/// (<see cref="HessianFactor"/>) and the point's weights are rounded with compensation inside the layer's own
/// float32 tensors (<see cref="GptqRounding"/>), then the chunks go through the rounded layer to become layer i+1's
/// input (so later layers compensate earlier layers' error, as GPTQ does). Memory holds one layer, its Hessians and
/// one factor, not the model. The embedding and an untied head are rounded plainly: the head's inputs exist only
/// after the last layer, while the file stores the embedding first. Every piece of the work is cut the same way at
/// any --threads, so the bytes are the same.
/// </summary>
internal sealed class GptqLayerWalk : ITensorRounding, IDisposable
{
    private readonly IHymbaTensorSource _source;
    private readonly HymbaConfig _config;
    private readonly ImportanceMatrix? _importance;
    private readonly int _threads;
    private readonly IReadOnlyList<StoredTensor> _layout;
    private readonly Func<StoredTensor, BlockGrid?> _gridOf;
    private readonly CalibrationActivations _activations;
    private readonly int _chunks;
    private readonly Action? _releasePages;

    /// <summary>Weight each block's scale search by the calibration's own mean squared inputs (the diagonal of H / N) when no importance matrix is given.</summary>
    public bool CalibrationImportance { get; init; }
    /// <summary>Receives one line per layer with the time of each step (for logs: a 1.5B walk runs for minutes).</summary>
    public Action<string>? Log { get; set; }
    private int _nextLayer;
    private Dictionary<string, byte[]> _current = new(StringComparer.Ordinal);

    public GptqLayerWalk(IHymbaTensorSource source, long[][] chunks, Func<StoredTensor, BlockGrid?> gridOf, ImportanceMatrix? importance, int? threads = null, Action? releasePages = null)
    {
        _releasePages = releasePages;
        _source = source;
        _config = source.Config;
        _gridOf = gridOf;
        _importance = importance;
        _threads = threads ?? Common.ComputeThreads.Count;
        _chunks = chunks.Length;
        _layout = HymbaStorageLayout.For(_config);
        using var pin = TorchThreadPin.Single();
        _activations = new CalibrationActivations(source, chunks, _threads);
    }

    /// <summary>Layers whose Cholesky needed more than the initial damping.</summary>
    public List<string> Notes { get; } = [];

    /// <summary>Wall and CPU seconds of each step, summed over the layers walked so far.</summary>
    public GptqStepTimes Times { get; } = new();

    /// <summary>A walk for a GGUF plan: each tensor in its planned ggml type's grid.</summary>
    /// <param name="releasePages">drops the source's mapped pages after each layer (resident memory stays at one layer)</param>
    public static GptqLayerWalk ForGgml(IHymbaTensorSource source, long[][] chunks, QuantizationPlan plan, ImportanceMatrix? importance, int? threads = null, Action? releasePages = null)
    {
        var types = plan.Tensors.ToDictionary(p => p.Tensor.Name, p => p.Type, StringComparer.Ordinal);
        return new GptqLayerWalk(source, chunks, t => types.TryGetValue(t.Name, out var type) && GgmlTypes.FitsRow(type, t.Columns) ? BlockGrid.ForGgml(type) : null, importance, threads, releasePages);
    }

    public byte[]? TryRound(StoredTensor tensor)
    {
        if (tensor.Layer < 0) return null;
        if (tensor.Layer < _nextLayer - 1) throw new InvalidOperationException($"{tensor.Name} asked for after layer {_nextLayer - 1} (tensors must come in layer order)");
        while (_nextLayer <= tensor.Layer) Advance();
        return _current.Remove(tensor.Name, out var bytes) ? bytes : null;
    }

    /// <summary>The layer's weights GPTQ rounds, grouped by the activation point they read, in layout order.</summary>
    private List<(ActivationPoint Point, List<(StoredTensor Tensor, BlockGrid Grid)> Tensors)> Rounded(int layer)
    {
        var groups = new List<(ActivationPoint, List<(StoredTensor, BlockGrid)>)>();
        foreach (var t in _layout.Where(t => t.Layer == layer && t.IsMatrix && HymbaStorageLayout.IsLinearWeight(t.Role)))
        {
            if (_gridOf(t) is not { } grid || t.Columns % grid.BlockSize != 0) continue;
            if (ImportanceMatrix.PointOf(t.Role, _config.TieWordEmbeddings) is not { } point) continue;
            int at = groups.FindIndex(g => g.Item1 == point);
            if (at < 0) groups.Add((point, [(t, grid)]));
            else groups[at].Item2.Add((t, grid));
        }
        return groups;
    }

    /// <summary>Rounds the next layer's weights and moves the calibration activations through the rounded layer.</summary>
    private void Advance()
    {
        var c = _config;
        var plan = c.Layers[_nextLayer];
        var groups = Rounded(plan.Index);
        var points = groups.Select(g => g.Point).ToHashSet();
        using var pin = TorchThreadPin.Single();
        using var grad = no_grad();
        var layerClock = GptqStepTimes.Start();
        Times.BeginLayer();
        var weights = HymbaWeights.LoadLayer(_source, plan);
        var hessians = new HessianAccumulator((layer, point) => layer == plan.Index && points.Contains(point), _chunks, _activations.MetaSteps);
        try
        {
            var clock = GptqStepTimes.Start();
            _activations.Probe(weights, hessians);
            Times.Add(GptqStep.Hessians, clock);
            _current = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            double maxDamping = 0;
            foreach (var (point, tensors) in groups)
            {
                var importance = _importance is null && CalibrationImportance ? hessians.MeanSquares(plan.Index, point) : null;
                if (hessians.Take(plan.Index, point) is not { } sum) continue;
                clock = GptqStepTimes.Start();
                using var factor = HessianFactor.Compute(sum, _threads);
                Times.Add(GptqStep.Factors, clock);
                maxDamping = Math.Max(maxDamping, factor.Damping);
                clock = GptqStepTimes.Start();
                foreach (var (t, grid) in tensors)
                {
                    if (WeightSlots.Of(weights, t, c) is not { } slot) continue;
                    using var scope = NewDisposeScope();
                    var columnsImportance = _importance?.For(t.Name, checked((int)t.Columns)) ?? importance;
                    _current[t.Name] = GptqRounding.Round(slot.View(), factor, grid, columnsImportance, _threads);
                }
                Times.Add(GptqStep.Sweeps, clock);
            }
            hessians.Dispose();   // the points nothing was rounded at, before the pass below allocates
            if (maxDamping > HessianFactor.InitialDamping) Notes.Add($"layer {plan.Index}: damping up to {maxDamping:G3} x mean(diag H)");
            clock = GptqStepTimes.Start();
            _activations.Advance(weights);
            Times.Add(GptqStep.RoundedPass, clock);
        }
        finally
        {
            hessians.Dispose();
            HymbaWeights.DisposeLayer(weights, ownsTensors: true);
            _releasePages?.Invoke();
            // A layer leaves large managed arrays behind (levels, bytes already handed over); with free RAM the GC
            // would keep them, and peak memory would grow with the model instead of staying at one layer.
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;   // the layer's MB-sized arrays leave holes
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();   // tensors dropped without Dispose free their native memory here
            Common.NativeHeap.Trim();
        }
        Times.Layers++;
        _nextLayer++;
        Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"layer {_nextLayer}/{c.NumLayers}: {layerClock.WallSeconds:F1} s ({Times.Layer()}); peak resident so far {System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / 1e9:F2} GB"));
    }

    public void Dispose() => _activations.Dispose();
}
