using HymbaTools.Model;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// A stored tensor the graph reads only through a constant expression, written as that expression's value: the
/// initializer's name, its shape and the map applied to each float32 value at export time.
/// </summary>
internal sealed record OnnxDerivation(string Name, long[] Shape, Func<float, float> Map);

/// <summary>
/// Which stored tensors are written derived (<see cref="OnnxDerivation"/>): the two fusion gains halved (the mean of
/// the attention and SSM branches, exact: a power of two), A = -exp(A_log) and the conv kernel as [d_in, 1, k], the
/// shape CausalConvWithState takes. ONNX Runtime would fold these expressions when a session loads; stored folded,
/// the graph has five fewer nodes a layer and another runtime nothing to fold. Names say what is stored.
/// </summary>
internal static class OnnxDerivedWeights
{
    private static readonly Dictionary<StoredRole, Func<StoredTensor, OnnxDerivation>> ByRole = new()
    {
        [StoredRole.AttnOutNorm] = t => new(t.Name + ".halved", t.Shape, x => x * 0.5f),
        [StoredRole.SsmOutNorm] = t => new(t.Name + ".halved", t.Shape, x => x * 0.5f),
        [StoredRole.SsmALog] = t => new(HymbaStorageLayout.NameOf(StoredRole.SsmALog, t.Layer).Replace("_a_log", "_a", StringComparison.Ordinal), t.Shape, x => -MathF.Exp(x)),
        [StoredRole.SsmConv1d] = t => new(t.Name, [t.Shape[0], 1, t.Shape[1]], x => x),
    };

    /// <summary>The derivation of a stored float32 tensor, or null when it is written as stored.</summary>
    public static OnnxDerivation? Of(OnnxWeight weight) =>
        weight.Kind == OnnxWeightKind.Float32 && ByRole.TryGetValue(weight.Tensor.Role, out var derive) ? derive(weight.Tensor) : null;
}
