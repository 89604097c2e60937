using HymbaTools.Model;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Gptq;

/// <summary>
/// The upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) that the GPTQ sweep reads, from H = XᵀX of a layer's inputs.
/// Dead input columns (H_ii = 0: the column never saw a non-zero input) get H_ii = 1, so they round plainly and
/// pass nothing on. Damping λ·mean(diag H) starts at 1 % and grows tenfold until the float64 Cholesky succeeds.
/// U is computed without forming H⁻¹: with J the order reversal and JHJ = LLᵀ, U = J L⁻¹ J (upper), and
/// UᵀU = J L⁻ᵀ L⁻¹ J = H⁻¹. The Cholesky runs on one libtorch thread; L⁻¹ is solved in column blocks of a fixed
/// width on worker threads (block [c0, c1) of L⁻¹ is zero above row c0, so each block solves only L[c0:, c0:], a
/// third of a full solve's work), so the factor is the same bits at any --threads.
/// </summary>
internal static class HessianFactor
{
    public const double InitialDamping = 0.01;
    private const int MaxDampingSteps = 10;
    private const int BlockColumns = Model.TorchWorkers.FixedBlockColumns;

    /// <summary>The factor [cols, cols] row-major in float32, and the damping it needed.</summary>
    public static (float[] Factor, double Damping) Compute(Tensor hessian, int threads = 1)
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
                var values = InverseFlipped(lower, checked((int)cols), threads);
                if (values.All(float.IsFinite)) return (values, damping);
            }
        }
        // Nothing factorised (a pathological H): the diagonal alone, which is plain rounding with no compensation.
        var plain = new float[cols * cols];
        for (long i = 0; i < cols; i++) plain[i * cols + i] = (float)(1 / Math.Sqrt(d[cols - 1 - i] + damping * mean));
        return (plain, double.PositiveInfinity);
    }

    /// <summary>
    /// U = J L⁻¹ J as float32 [n, n] row-major: L⁻¹'s column block [c0, c1) is X = L[c0:, c0:]⁻¹ · I[c0:, c0:c1], and
    /// row r, column c of L⁻¹ lands at U[n-1-r, n-1-c].
    /// </summary>
    private static float[] InverseFlipped(Tensor lower, int n, int threads)
    {
        var factor = new float[(long)n * n];
        int blocks = (n + BlockColumns - 1) / BlockColumns;
        Model.TorchWorkers.For(blocks, threads, b =>
        {
            int c0 = b * BlockColumns, width = Math.Min(BlockColumns, n - c0), height = n - c0;
            using var scope = NewDisposeScope();
            var x = linalg.solve_triangular(lower[c0.., c0..], eye(height, width, dtype: ScalarType.Float64), upper: false).to(ScalarType.Float32).contiguous();
            var values = x.data<float>().ToArray();   // [height, width]
            for (int i = 0; i < height; i++)
            {
                long row = (long)(n - 1 - (c0 + i)) * n;
                for (int j = 0; j < width; j++) factor[row + n - 1 - (c0 + j)] = values[(long)i * width + j];
            }
        });
        return factor;
    }
}
