using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>Where in a layer an activation enters a linear weight.</summary>
internal enum ActivationPoint
{
    /// <summary>Normalised layer input, read by all in_proj blocks (Q, K, V, x, z).</summary>
    MixerInput,
    /// <summary>Post-conv SSM input u, read by x_proj.</summary>
    SsmProjectionInput,
    /// <summary>Normalised dt, read by dt_proj.</summary>
    DtProjectionInput,
    /// <summary>Fused attention + SSM output, read by out_proj.</summary>
    MixerOutputInput,
    /// <summary>Normalised input of the MLP, read by gate and up.</summary>
    MlpInput,
    /// <summary>silu(gate) * up, read by down.</summary>
    MlpDownInput,
    /// <summary>Final normalised hidden states of text positions, read by the output head.</summary>
    HeadInput,
}

/// <summary>
/// Per-column sums of squared activations at every <see cref="ActivationPoint"/>, accumulated over forward
/// passes: the importance data of llama.cpp's imatrix (mean of x^2 for each input column of a weight).
/// </summary>
internal sealed class ActivationStatistics
{
    private readonly Dictionary<(int Layer, ActivationPoint Point), (double[] Sums, long Rows)> _data = [];
    private readonly Dictionary<(int Layer, ActivationPoint Point), List<Tensor>> _inputs = [];
    private readonly Dictionary<(int Layer, ActivationPoint Point), Tensor> _grams = [];

    public int Chunks { get; set; }

    /// <summary>
    /// Layers (-1: the head) whose inputs are kept (float32 rows) for their Gram matrices XᵀX (float64), for
    /// error-compensating rounding; null for none. The Gram matrix of a point is computed when asked for and
    /// freed with its rows, so a walk holds a layer's inputs and one d x d matrix at a time.
    /// </summary>
    public IReadOnlySet<int>? GramLayers { get; init; }

    /// <summary>Threads for computing Gram matrices (the result is the same at any count).</summary>
    public int Threads { get; init; } = Common.ComputeThreads.Count;

    internal void Record(int layer, ActivationPoint point, Tensor activation)
    {
        long cols = activation.shape[^1];
        using var scope = NewDisposeScope();
        var sums = TorchScalars.Square(activation.detach().reshape(-1, cols).to(ScalarType.Float64)).sum(0L).contiguous();
        long rows = activation.numel() / cols;
        var values = sums.data<double>().ToArray();
        if (!_data.TryGetValue((layer, point), out var entry)) entry = (new double[cols], 0);
        for (int i = 0; i < cols; i++) entry.Sums[i] += values[i];
        _data[(layer, point)] = (entry.Sums, entry.Rows + rows);
        if (GramLayers is not null && GramLayers.Contains(layer))
        {
            if (!_inputs.TryGetValue((layer, point), out var list)) _inputs[(layer, point)] = list = [];
            list.Add(activation.detach().reshape(-1, cols).to(ScalarType.Float32).clone().DetachFromDisposeScope());
        }
    }

    /// <summary>
    /// Adds another recording's statistics after this one's (sums per column, rows, kept inputs in order; the other
    /// is left empty). Chunks recorded separately and merged in chunk order give the same bits however they ran.
    /// </summary>
    internal void Merge(ActivationStatistics other)
    {
        foreach (var (key, (sums, rows)) in other._data)
        {
            if (!_data.TryGetValue(key, out var entry)) entry = (new double[sums.Length], 0);
            for (int i = 0; i < sums.Length; i++) entry.Sums[i] += sums[i];
            _data[key] = (entry.Sums, entry.Rows + rows);
        }
        foreach (var (key, list) in other._inputs)
        {
            if (!_inputs.TryGetValue(key, out var mine)) _inputs[key] = mine = [];
            mine.AddRange(list);
        }
        other._data.Clear();
        other._inputs.Clear();
    }

    /// <summary>Σ xᵀx over every recorded row at a point (float64 [cols, cols]), or null if not recorded.</summary>
    public Tensor? Gram(int layer, ActivationPoint point)
    {
        if (_grams.TryGetValue((layer, point), out var gram)) return gram;
        if (!_inputs.TryGetValue((layer, point), out var rows) || rows.Count == 0) return null;
        return _grams[(layer, point)] = GramMatrix.Compute(rows, Threads);
    }

    /// <summary>Frees one Gram matrix and its rows once it has served (a large model holds a layer's few hundred MB only as long as needed).</summary>
    public void ReleaseGram(int layer, ActivationPoint point)
    {
        if (_grams.Remove((layer, point), out var gram)) gram.Dispose();
        if (_inputs.Remove((layer, point), out var rows)) foreach (var t in rows) t.Dispose();
    }

    /// <summary>Frees the Gram matrices and kept rows of a layer (a layer-by-layer walk keeps one layer's).</summary>
    public void ReleaseGrams(int layer)
    {
        foreach (var point in _inputs.Keys.Where(k => k.Layer == layer).Select(k => k.Point).ToList())   // a Gram matrix exists only beside its rows
            ReleaseGram(layer, point);
    }

    /// <summary>Mean of squares per column at a point, or null if never recorded.</summary>
    public float[]? MeanSquares(int layer, ActivationPoint point) =>
        _data.TryGetValue((layer, point), out var e) && e.Rows > 0 ? e.Sums.Select(s => (float)(s / e.Rows)).ToArray() : null;
}
