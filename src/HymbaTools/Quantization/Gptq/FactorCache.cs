using HymbaTools.Model;
using HymbaTools.Quantization.Calibration;

namespace HymbaTools.Quantization.Gptq;

/// <summary>
/// The inverse-Hessian factor of every activation point of a whole model, from its unrounded layers' inputs on the
/// calibration chunks (for measuring costs with GPTQ on models small enough to hold every layer's Hessian), computed
/// when first asked for and shared by every weight that reads the point (in_proj's five blocks read one).
/// </summary>
internal sealed class FactorCache : IDisposable
{
    private readonly HessianAccumulator _hessians;
    private readonly int _threads;
    private readonly Dictionary<(int Layer, ActivationPoint Point), InverseHessianFactor> _factors = [];

    private FactorCache(HessianAccumulator hessians, int threads)
    {
        _hessians = hessians;
        _threads = threads;
    }

    /// <summary>Passes the chunks through every layer of <paramref name="source"/> and sums the Hessians of every weight's inputs.</summary>
    public static FactorCache Measure(IHymbaTensorSource source, long[][] chunks, int threads)
    {
        var c = source.Config;
        var hessians = new HessianAccumulator((_, point) => point != ActivationPoint.HeadInput, chunks.Length, c.NumMemoryTokens);
        try
        {
            using var activations = new CalibrationActivations(source, chunks, threads);
            foreach (var plan in c.Layers)
            {
                var weights = HymbaWeights.LoadLayer(source, plan);
                try { activations.Advance(weights, hessians); }
                finally { HymbaWeights.DisposeLayer(weights, ownsTensors: true); }
            }
            return new FactorCache(hessians, threads);
        }
        catch
        {
            hessians.Dispose();
            throw;
        }
    }

    /// <summary>The factor for a weight's input point, or null when nothing was recorded there.</summary>
    public InverseHessianFactor? For(int layer, ActivationPoint point)
    {
        if (_factors.TryGetValue((layer, point), out var f)) return f;
        if (_hessians.Take(layer, point) is not { } sum) return null;
        return _factors[(layer, point)] = HessianFactor.Compute(sum, _threads);
    }

    /// <summary>The calibration's mean squared input per column at a point (null when not recorded).</summary>
    public float[]? MeanSquares(int layer, ActivationPoint point) => _hessians.MeanSquares(layer, point);

    public void Dispose()
    {
        foreach (var f in _factors.Values) f.Dispose();
        _factors.Clear();
        _hessians.Dispose();
    }
}
