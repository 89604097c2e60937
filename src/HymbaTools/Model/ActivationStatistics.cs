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
    private readonly Dictionary<(int Layer, ActivationPoint Point), Tensor> _grams = [];

    public int Chunks { get; set; }

    /// <summary>
    /// Layers (-1: the head) whose full Gram matrices XᵀX (float64) are accumulated too, for error-compensating
    /// rounding; null for none. A d x d matrix per point, so callers ask for one layer at a time on large models.
    /// </summary>
    public IReadOnlySet<int>? GramLayers { get; init; }

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
            var x = activation.detach().reshape(-1, cols).to(ScalarType.Float64);
            var gram = x.t().matmul(x);
            if (_grams.TryGetValue((layer, point), out var sum)) sum.add_(gram, TorchScalars.One);
            else _grams[(layer, point)] = gram.DetachFromDisposeScope();
        }
    }

    /// <summary>Σ xᵀx over every recorded row at a point (float64 [cols, cols]), or null if not recorded.</summary>
    public Tensor? Gram(int layer, ActivationPoint point) => _grams.GetValueOrDefault((layer, point));

    /// <summary>Frees one Gram matrix once it has served (a large model holds a layer's few hundred MB only as long as needed).</summary>
    public void ReleaseGram(int layer, ActivationPoint point)
    {
        if (_grams.Remove((layer, point), out var gram)) gram.Dispose();
    }

    /// <summary>Frees the Gram matrices of a layer (a layer-by-layer walk keeps one layer's).</summary>
    public void ReleaseGrams(int layer)
    {
        foreach (var key in _grams.Keys.Where(k => k.Layer == layer).ToList())
        {
            _grams[key].Dispose();
            _grams.Remove(key);
        }
    }

    /// <summary>Mean of squares per column at a point, or null if never recorded.</summary>
    public float[]? MeanSquares(int layer, ActivationPoint point) =>
        _data.TryGetValue((layer, point), out var e) && e.Rows > 0 ? e.Sums.Select(s => (float)(s / e.Rows)).ToArray() : null;
}
