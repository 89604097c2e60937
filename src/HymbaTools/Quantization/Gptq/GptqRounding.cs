using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Quantization.Gptq;

/// <summary>
/// Error-compensating rounding (GPTQ / OBQ, Frantar et al. 2022) of a weight [rows, cols] whose inputs have the
/// Hessian H = XᵀX: columns are rounded left to right, and each column's rounding error, divided by the pivot
/// of the inverse Hessian's Cholesky factor U (H⁻¹ = UᵀU, upper), is pushed onto the columns not yet rounded
/// along U's row, so later columns absorb what earlier ones lost. A block's scale is chosen by the block grid
/// (ggml's own search) when the sweep reaches the block's first column, from the values updated so far.
/// Rows are independent given U, so they are swept in parallel tiles; each row sees the same arithmetic in the
/// same order at any thread count.
/// </summary>
internal static class GptqRounding
{
    /// <summary>Rows swept together: one read of U's row serves them all while it is in cache.</summary>
    private const int TileRows = 8;

    /// <summary>Rounds <paramref name="weight"/> (row-major, modified in place into the dequantized result) and returns the written rows.</summary>
    /// <param name="factor">upper Cholesky factor of H⁻¹, [cols, cols] row-major (see <see cref="HessianFactor"/>)</param>
    public static byte[] Round(float[] weight, int rows, int cols, float[] factor, BlockGrid grid, ReadOnlySpan<float> importance, int? maxParallelism = null)
    {
        if (weight.Length != (long)rows * cols) throw new ArgumentException($"weight has {weight.Length} values, expected {rows} x {cols}");
        if (factor.Length != (long)cols * cols) throw new ArgumentException($"factor has {factor.Length} values, expected {cols} x {cols}");
        if (cols % grid.BlockSize != 0) throw new ArgumentException($"rows of {cols} are not whole blocks of {grid.BlockSize}");
        if (!importance.IsEmpty && importance.Length != cols) throw new ArgumentException($"importance has {importance.Length} entries for rows of {cols}");
        int rowBytes = checked((int)grid.RowBytes(cols));
        var output = new byte[(long)rows * rowBytes];
        var weights = importance.IsEmpty ? null : importance.ToArray();
        int tiles = (rows + TileRows - 1) / TileRows;
        var options = new ParallelOptions { MaxDegreeOfParallelism = maxParallelism ?? Common.ComputeThreads.Count };
        Parallel.For(0, tiles, options, tile =>
        {
            int first = tile * TileRows, count = Math.Min(TileRows, rows - first);
            SweepTile(weight.AsSpan(first * cols, count * cols), count, cols, factor, grid, weights, output.AsSpan(first * rowBytes, count * rowBytes), rowBytes);
        });
        return output;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SweepTile(Span<float> w, int count, int cols, float[] factor, BlockGrid grid, float[]? importance, Span<byte> output, int rowBytes)
    {
        int blockSize = grid.BlockSize, blocks = cols / blockSize;
        var scales = new BlockScale[count * blocks];
        var levels = new byte[count * cols];
        for (int i = 0; i < cols; i++)
        {
            int block = i / blockSize;
            if (i % blockSize == 0)
                for (int r = 0; r < count; r++)
                    scales[r * blocks + block] = grid.Choose(w.Slice(r * cols + i, blockSize), importance is null ? default : importance.AsSpan(i, blockSize));
            float pivot = factor[(long)i * cols + i];
            var uRow = factor.AsSpan((int)((long)i * cols + i + 1), cols - i - 1);
            for (int r = 0; r < count; r++)
            {
                ref readonly var scale = ref scales[r * blocks + block];
                float value = w[r * cols + i];
                int q = grid.Nearest(scale, value);
                float rounded = grid.Value(scale, q);
                levels[r * cols + i] = (byte)q;
                w[r * cols + i] = rounded;
                float error = pivot > 0 ? (value - rounded) / pivot : 0f;
                if (error != 0 && float.IsFinite(error)) SubtractScaled(w.Slice(r * cols + i + 1, cols - i - 1), uRow, error);
            }
        }
        for (int r = 0; r < count; r++)
            grid.WriteRow(scales.AsSpan(r * blocks, blocks), levels.AsSpan(r * cols, cols), output.Slice(r * rowBytes, rowBytes));
    }

    /// <summary>target -= scale * source, vectorised (the same lanes in the same order on every run).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SubtractScaled(Span<float> target, ReadOnlySpan<float> source, float scale)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && target.Length >= Vector<float>.Count)
        {
            var s = new Vector<float>(scale);
            var t = MemoryMarshal.Cast<float, Vector<float>>(target);
            var u = MemoryMarshal.Cast<float, Vector<float>>(source);
            for (int v = 0; v < t.Length; v++) t[v] -= u[v] * s;
            i = t.Length * Vector<float>.Count;
        }
        for (; i < target.Length; i++) target[i] -= source[i] * scale;
    }
}
