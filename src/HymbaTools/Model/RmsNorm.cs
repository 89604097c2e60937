using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>RMSNorm as the reference computes it: x * rsqrt(mean(x^2) + eps) in float32, then times the gain.</summary>
internal static class RmsNorm
{
    public static Tensor Apply(Tensor x, Tensor? weight, double eps)
    {
        var normalized = x * TorchScalars.Add(TorchScalars.Square(x).mean([-1L], keepdim: true), eps).rsqrt();
        return weight is null ? normalized : weight * normalized;
    }
}
