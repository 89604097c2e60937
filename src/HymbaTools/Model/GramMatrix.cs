using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>
/// XᵀX in float64 of the rows recorded at one activation point, computed in column blocks of a fixed width on
/// libtorch worker threads: each block's lower part X[:, c0:]ᵀ·X[:, c0:c1] is one single-threaded product whose
/// shape depends only on the data, so the matrix is the same bits at any thread count, and the upper part is its
/// mirror (half the products of a full XᵀX).
/// </summary>
internal static class GramMatrix
{
    private const int BlockColumns = TorchWorkers.FixedBlockColumns;

    /// <summary>The Gram matrix [cols, cols] of the row blocks (each [rows_i, cols], concatenated in order).</summary>
    public static Tensor Compute(IReadOnlyList<Tensor> parts, int threads)
    {
        if (parts.Count == 0) throw new ArgumentException("no rows recorded");
        long cols = parts[0].shape[^1];
        if (cols * cols > int.MaxValue) throw new ArgumentException($"a Gram matrix of {cols} columns is too large");
        int n = (int)cols;
        using var rows = cat([.. parts], 0).to(ScalarType.Float64);
        var result = new double[cols * cols];
        int blocks = (n + BlockColumns - 1) / BlockColumns;
        TorchWorkers.For(blocks, threads, b =>
        {
            int c0 = b * BlockColumns, width = Math.Min(BlockColumns, n - c0);
            using var scope = NewDisposeScope();
            var lower = rows[.., c0..].t().matmul(rows[.., c0..(c0 + width)]).contiguous();   // [n - c0, width]
            var values = lower.data<double>().ToArray();
            for (int i = 0; i < n - c0; i++)
                for (int j = 0; j < width; j++)
                {
                    double v = values[(long)i * width + j];
                    result[(long)(c0 + i) * n + c0 + j] = v;
                    result[(long)(c0 + j) * n + c0 + i] = v;
                }
        });
        return tensor(result, [cols, cols]);
    }
}
