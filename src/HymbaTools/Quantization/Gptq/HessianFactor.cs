using HymbaTools.Model;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Gptq;

/// <summary>
/// The upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) that the GPTQ sweep reads, from H = XᵀX of a layer's inputs.
/// Dead input columns (H_ii = 0: the column never saw a non-zero input) get H_ii = 1, so they round plainly and
/// pass nothing on. Damping λ·mean(diag H) starts at 1 % and grows tenfold until the float64 Cholesky succeeds.
/// U is computed without forming H⁻¹: with J the order reversal and JHJ = LLᵀ, U = J L⁻¹ J (upper), and
/// UᵀU = J L⁻ᵀ L⁻¹ J = H⁻¹. Runs on one libtorch thread so the factor is the same bits at any --threads.
/// </summary>
internal static class HessianFactor
{
    public const double InitialDamping = 0.01;
    private const int MaxDampingSteps = 10;

    /// <summary>The factor [cols, cols] row-major in float32, and the damping it needed.</summary>
    public static (float[] Factor, double Damping) Compute(Tensor hessian)
    {
        long cols = hessian.shape[0];
        if (hessian.dim() != 2 || hessian.shape[1] != cols) throw new ArgumentException("the Hessian must be square");
        using var pin = TorchThreadPin.Single();
        using var grad = no_grad();
        // Temporaries are disposed as soon as they are used: at 1.5B a 5504-wide float64 matrix is 242 MB.
        using var reversed = hessian.to(ScalarType.Float64).flip(0, 1);
        var diagonal = reversed.diagonal();
        double[] d;
        using (var dead = diagonal.le(TorchScalars.Of(0)).logical_or(diagonal.isfinite().logical_not()))
        {
            if (dead.any().item<bool>())
            {
                using var cross = dead.unsqueeze(0).logical_or(dead.unsqueeze(1));
                reversed.masked_fill_(cross, TorchScalars.Of(0));
                diagonal.masked_fill_(dead, TorchScalars.One);
            }
            d = diagonal.data<double>().ToArray();
        }
        double mean = d.Average();
        if (!(mean > 0) || !double.IsFinite(mean)) mean = 1;
        double damping = InitialDamping;
        for (int step = 0; step < MaxDampingSteps; step++, damping *= 10)
        {
            Tensor lower, info;
            using (var damped = reversed.clone())
            {
                damped.diagonal().add_(TorchScalars.Of(damping * mean), TorchScalars.One);
                (lower, info) = linalg.cholesky_ex(damped);
            }
            using (lower)
            using (info)
            {
                if (info.item<int>() != 0) continue;
                Tensor inverse;
                using (var identity = eye(cols, dtype: ScalarType.Float64)) inverse = linalg.solve_triangular(lower, identity, upper: false);
                lower.Dispose();
                using (inverse)
                using (var flipped = inverse.flip(0, 1))
                using (var factor = flipped.to(ScalarType.Float32))
                {
                    var values = factor.data<float>().ToArray();
                    if (values.All(float.IsFinite)) return (values, damping);
                }
            }
        }
        // Nothing factorised (a pathological H): the diagonal alone, which is plain rounding with no compensation.
        var plain = new float[cols * cols];
        for (long i = 0; i < cols; i++) plain[i * cols + i] = (float)(1 / Math.Sqrt(d[cols - 1 - i] + damping * mean));
        return (plain, double.PositiveInfinity);
    }
}
