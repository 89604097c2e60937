using HymbaTools.Common;
using HymbaTools.Model;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Gptq;

/// <summary>The upper Cholesky factor U of H⁻¹ that the GPTQ sweep reads (float32 [n, n], H⁻¹ = UᵀU), and the damping it needed.</summary>
internal sealed class InverseHessianFactor(Tensor upper, double damping) : IDisposable
{
    public Tensor Upper { get; } = upper;
    /// <summary>λ of the damping λ·mean(diag H) the factorisation needed (∞: nothing factorised, the diagonal alone).</summary>
    public double Damping { get; } = damping;
    public int Columns => (int)Upper.shape[0];

    public void Dispose() => Upper.Dispose();
}

/// <summary>
/// GPTQ's inverse-Hessian factor from H = XᵀX of a layer's inputs, computed in place in a float64 copy of the sum the
/// calibration accumulated (<see cref="Calibration.HessianAccumulator"/>: the reversed JHJ, lower triangle; the float32
/// sum is freed as soon as it is copied).
/// U is computed without forming H⁻¹: with JHJ = LLᵀ, U = J L⁻¹ J (upper) and UᵀU = J L⁻ᵀ L⁻¹ J = H⁻¹.
/// <list type="bullet">
/// <item>Dead input columns (H_ii = 0: the column never saw a non-zero input) get H_ii = 1 and no coupling, so
/// they round plainly and pass nothing on.</item>
/// <item>Damping λ·mean(diag H) starts at λ = 1 % and grows tenfold until the Cholesky succeeds. The strict upper
/// triangle keeps H (mirrored from the lower one first) and the diagonal blocks are saved, so a failed attempt is
/// undone without a second full-size matrix.</item>
/// <item>The Cholesky is blocked (right-looking, fixed 256-column blocks): each step's panel solves and trailing
/// updates are single-threaded libtorch products of fixed shapes run on worker threads, so the factor is the same
/// bits at any --threads while using every core. L⁻¹ is solved a fixed column block at a time (block j of L⁻¹
/// needs only L[j:, j:]: X_jj = L_jj⁻¹, X_ij = −L_ii⁻¹ Σ_k L_ik X_kj), each into its own workspace, and written
/// straight into U as float32.</item>
/// </list>
/// Memory: the float64 matrix, the float32 factor and a few blocks.
/// </summary>
internal static class HessianFactor
{
    public const double InitialDamping = 0.01;
    private const int MaxDampingSteps = 10;
    private const int Block = TorchWorkers.FixedBlockColumns;

    /// <summary>The factor of the Hessian accumulated in <paramref name="reversedGram"/> ([n, n] float32 or float64, reversed order, lower triangle and diagonal blocks written; disposed here).</summary>
    public static unsafe InverseHessianFactor Compute(Tensor reversedGram, int threads = 1)
    {
        if (reversedGram.dim() != 2 || reversedGram.shape[0] != reversedGram.shape[1]) throw new ArgumentException("the Hessian must be a square matrix");
        var h = reversedGram.dtype == ScalarType.Float64 ? reversedGram : reversedGram.to(ScalarType.Float64);
        if (!ReferenceEquals(h, reversedGram)) reversedGram.Dispose();   // the float32 sum, before the factor's own memory
        using var owned = h;
        int n = (int)h.shape[0];
        using var pin = TorchThreadPin.Single();
        using var grad = no_grad();
        Mirror(h, n);
        double* a = TorchMemory.DoublePointer(h);
        var diagonal = ClearDeadColumns(a, n);
        double mean = diagonal.Average();
        if (!(mean > 0) || !double.IsFinite(mean)) mean = 1;
        var saved = SaveDiagonalBlocks(h, n);
        try
        {
            double damping = InitialDamping;
            for (int step = 0; step < MaxDampingSteps; step++, damping *= 10)
            {
                if (step > 0) Restore(h, n, saved);
                for (int i = 0; i < n; i++) a[(long)i * n + i] += damping * mean;
                if (!CholeskyInPlace(h, n, threads)) continue;
                var upper = empty([n, n], ScalarType.Float32);
                if (InverseIntoUpper(h, n, upper, threads)) return new InverseHessianFactor(upper, damping);
                upper.Dispose();
            }
            // Nothing factorised (a pathological H): the diagonal alone, which is plain rounding with no compensation.
            var plain = zeros([n, n], ScalarType.Float32);
            float* u = TorchMemory.Pointer(plain);
            for (int i = 0; i < n; i++) u[(long)i * n + i] = (float)(1 / Math.Sqrt(diagonal[n - 1 - i] + damping * mean));
            return new InverseHessianFactor(plain, double.PositiveInfinity);
        }
        finally
        {
            foreach (var t in saved) t.Dispose();
        }
    }

    /// <summary>The strict upper triangle from the lower one, block by block (the accumulated diagonal blocks are whole already).</summary>
    private static void Mirror(Tensor h, int n)
    {
        for (int i0 = Block; i0 < n; i0 += Block)
            for (int j0 = 0; j0 < i0; j0 += Block)
            {
                using var scope = NewDisposeScope();
                int rows = Math.Min(Block, n - i0);
                h.narrow(0, j0, Block).narrow(1, i0, rows).copy_(h.narrow(0, i0, rows).narrow(1, j0, Block).t());
            }
    }

    /// <summary>Columns whose diagonal is not positive and finite lose every coupling and get H_ii = 1; returns the diagonal after that.</summary>
    private static unsafe double[] ClearDeadColumns(double* a, int n)
    {
        var diagonal = new double[n];
        for (int i = 0; i < n; i++)
        {
            double d = a[(long)i * n + i];
            if (d > 0 && double.IsFinite(d)) { diagonal[i] = d; continue; }
            for (int j = 0; j < n; j++)
            {
                a[(long)i * n + j] = 0;
                a[(long)j * n + i] = 0;
            }
            a[(long)i * n + i] = diagonal[i] = 1;
        }
        return diagonal;
    }

    private static List<Tensor> SaveDiagonalBlocks(Tensor h, int n)
    {
        var saved = new List<Tensor>();
        for (int k0 = 0; k0 < n; k0 += Block)
        {
            int size = Math.Min(Block, n - k0);
            saved.Add(h.narrow(0, k0, size).narrow(1, k0, size).clone());
        }
        return saved;
    }

    /// <summary>Undoes a failed attempt: the lower blocks from the untouched upper ones, the diagonal blocks from their copies.</summary>
    private static void Restore(Tensor h, int n, List<Tensor> saved)
    {
        for (int k0 = 0, b = 0; k0 < n; k0 += Block, b++)
        {
            Interruption.ThrowIfRequested();
            using var scope = NewDisposeScope();
            int size = Math.Min(Block, n - k0);
            h.narrow(0, k0, size).narrow(1, k0, size).copy_(saved[b]);
            for (int j0 = 0; j0 < k0; j0 += Block)
                h.narrow(0, k0, size).narrow(1, j0, Block).copy_(h.narrow(0, j0, Block).narrow(1, k0, size).t());
        }
    }

    /// <summary>A = LLᵀ in the lower triangle of <paramref name="h"/> (right-looking, block by block); false when A is not positive definite.</summary>
    private static bool CholeskyInPlace(Tensor h, int n, int threads)
    {
        int blocks = (n + Block - 1) / Block;
        for (int k = 0; k < blocks; k++)
        {
            Interruption.ThrowIfRequested();
            int k0 = k * Block, kSize = Math.Min(Block, n - k0), below = blocks - k - 1;
            using (var scope = NewDisposeScope())
            {
                var diagonalBlock = h.narrow(0, k0, kSize).narrow(1, k0, kSize);
                var (lower, info) = linalg.cholesky_ex(diagonalBlock);
                if (info.item<int>() != 0 || !lower.isfinite().all().item<bool>()) return false;
                diagonalBlock.copy_(lower);
            }
            if (below == 0) break;
            // Panel: A[i, k] = A[i, k] L_kk⁻ᵀ for every block row i below k.
            TorchWorkers.For(below, threads, t =>
            {
                Interruption.ThrowIfRequested();
                int i0 = k0 + kSize + t * Block, iSize = Math.Min(Block, n - i0);
                using var scope = NewDisposeScope();
                var lkk = h.narrow(0, k0, kSize).narrow(1, k0, kSize);
                var panel = h.narrow(0, i0, iSize).narrow(1, k0, kSize);
                panel.copy_(linalg.solve_triangular(lkk, panel.t(), upper: false).t());
            });
            // Trailing update of each block row i below k: A[i, k+1..i] −= A[i, k] A[k+1..i, k]ᵀ.
            TorchWorkers.For(below, threads, t =>
            {
                Interruption.ThrowIfRequested();
                int i0 = k0 + kSize + t * Block, iSize = Math.Min(Block, n - i0), start = k0 + kSize, width = i0 + iSize - start;
                using var scope = NewDisposeScope();
                var left = h.narrow(0, i0, iSize).narrow(1, k0, kSize);
                var right = h.narrow(0, start, width).narrow(1, k0, kSize);
                h.narrow(0, i0, iSize).narrow(1, start, width).add_(left.matmul(right.t()), TorchScalars.MinusOne);
            });
        }
        return true;
    }

    /// <summary>U = J L⁻¹ J as float32, one column block of L⁻¹ per task; false when a value is not finite.</summary>
    private static unsafe bool InverseIntoUpper(Tensor h, int n, Tensor upper, int threads)
    {
        int blocks = (n + Block - 1) / Block;
        float* u = TorchMemory.Pointer(upper);
        int nonFinite = 0;
        TorchWorkers.For(blocks, threads, j =>
        {
            int j0 = j * Block, jSize = Math.Min(Block, n - j0), height = n - j0;
            using var scope = NewDisposeScope();
            var x = zeros([height, jSize], ScalarType.Float64);   // rows j0.. of L⁻¹'s columns j0..j0+jSize
            for (int i0 = j0; i0 < n; i0 += Block)
            {
                Interruption.ThrowIfRequested();
                using var step = NewDisposeScope();
                int iSize = Math.Min(Block, n - i0);
                var lii = h.narrow(0, i0, iSize).narrow(1, i0, iSize);
                Tensor right;
                if (i0 == j0) right = eye(iSize, jSize, ScalarType.Float64);
                else right = h.narrow(0, i0, iSize).narrow(1, j0, i0 - j0).matmul(x.narrow(0, 0, i0 - j0)).neg_();
                x.narrow(0, i0 - j0, iSize).copy_(linalg.solve_triangular(lii, right, upper: false));
            }
            double* values = TorchMemory.DoublePointer(x);
            for (int r = 0; r < height; r++)
            {
                long row = (long)(n - 1 - (j0 + r)) * n;
                for (int c = 0; c < jSize && c <= r; c++)
                {
                    double v = values[(long)r * jSize + c];
                    if (!double.IsFinite(v)) Interlocked.Exchange(ref nonFinite, 1);
                    u[row + n - 1 - (j0 + c)] = (float)v;
                }
            }
        });
        if (nonFinite != 0) return false;
        // Below U's diagonal (above L⁻¹'s): zero.
        for (int r = 0; r < n; r++)
            new Span<float>(u + (long)r * n, r).Clear();
        return true;
    }
}
