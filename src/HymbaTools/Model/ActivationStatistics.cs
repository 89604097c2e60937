using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>
/// Per-column sums of squared activations at every <see cref="ActivationPoint"/>, accumulated over forward
/// passes: the importance data of llama.cpp's imatrix (mean of x^2 for each input column of a weight).
/// </summary>
internal sealed class ActivationStatistics : IActivationRecorder
{
    private readonly Dictionary<(int Layer, ActivationPoint Point), (double[] Sums, long Rows)> _data = [];

    public int Chunks { get; set; }

    public void Record(int layer, ActivationPoint point, Tensor activation)
    {
        long cols = activation.shape[^1];
        using var scope = NewDisposeScope();
        var sums = TorchScalars.Square(activation.detach().reshape(-1, cols).to(ScalarType.Float64)).sum(0L).contiguous();
        long rows = activation.numel() / cols;
        var values = sums.data<double>().ToArray();
        if (!_data.TryGetValue((layer, point), out var entry)) entry = (new double[cols], 0);
        for (int i = 0; i < cols; i++) entry.Sums[i] += values[i];
        _data[(layer, point)] = (entry.Sums, entry.Rows + rows);
    }

    /// <summary>
    /// Adds another recording's statistics after this one's (sums per column and rows; the other is left empty).
    /// Chunks recorded separately and merged in chunk order give the same bits however they ran.
    /// </summary>
    internal void Merge(ActivationStatistics other)
    {
        foreach (var (key, (sums, rows)) in other._data)
        {
            if (!_data.TryGetValue(key, out var entry)) entry = (new double[sums.Length], 0);
            for (int i = 0; i < sums.Length; i++) entry.Sums[i] += sums[i];
            _data[key] = (entry.Sums, entry.Rows + rows);
        }
        other._data.Clear();
    }

    /// <summary>Mean of squares per column at a point, or null if never recorded.</summary>
    public float[]? MeanSquares(int layer, ActivationPoint point) =>
        _data.TryGetValue((layer, point), out var e) && e.Rows > 0 ? e.Sums.Select(s => (float)(s / e.Rows)).ToArray() : null;
}
