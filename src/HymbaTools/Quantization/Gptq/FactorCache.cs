using HymbaTools.Model;

namespace HymbaTools.Quantization.Gptq;

/// <summary>
/// The inverse-Hessian factor of each activation point, computed once and shared by every weight that reads the
/// point (in_proj's five blocks read one, gate and up another). Cleared per layer in a layer-by-layer walk.
/// </summary>
internal sealed class FactorCache(ActivationStatistics statistics)
{
    private readonly Dictionary<(int Layer, ActivationPoint Point), (float[] Factor, double Damping)> _factors = [];

    /// <summary>The factor for a weight's input point, or null when its Gram matrix was not recorded.</summary>
    public (float[] Factor, double Damping)? For(int layer, ActivationPoint point)
    {
        if (_factors.TryGetValue((layer, point), out var f)) return f;
        if (statistics.Gram(layer, point) is not { } gram) return null;
        f = HessianFactor.Compute(gram, statistics.Threads);
        _factors[(layer, point)] = f;
        statistics.ReleaseGram(layer, point);   // the factor is all that is read from here on
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);   // the factorisation's temporaries, before the next
        Common.NativeHeap.Trim();
        return f;
    }

    public void Clear() => _factors.Clear();
}
