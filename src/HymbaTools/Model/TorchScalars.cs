using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>
/// Long-lived Scalars for the forward pass. TorchSharp's operators create a temporary Scalar for every
/// constant (and for the alpha = 1 of tensor + tensor) and pass only its native handle, so the GC may
/// finalize the Scalar while libtorch still reads it; under allocation pressure (training) that showed up as
/// "Expected false to be true" in Scalar::toFloat. Ops here take Scalars that stay rooted for the process.
/// </summary>
internal static class TorchScalars
{
    private static readonly ConcurrentDictionary<double, Scalar> Cache = new();

    public static Scalar Of(double value) => Cache.GetOrAdd(value, v => v.ToScalar());

    public static readonly Scalar One = Of(1.0);

    /// <summary>a + b without a temporary alpha Scalar.</summary>
    public static Tensor Add(Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a + constant.</summary>
    public static Tensor Add(Tensor a, double value) => a.add(Of(value));

    /// <summary>a * constant.</summary>
    public static Tensor Mul(Tensor a, double value) => a.mul(Of(value));
}
