using System.Numerics;
using System.Runtime.CompilerServices;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Quantization.BlockFormats;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Gptq;

/// <summary>
/// Error-compensating rounding (GPTQ / OBQ, Frantar et al. 2022) of a weight [rows, cols] whose inputs have the
/// Hessian H = XᵀX: columns are rounded left to right, and each column's rounding error, divided by the pivot
/// of the inverse Hessian's Cholesky factor U (H⁻¹ = UᵀU, upper), is pushed onto the columns not yet rounded
/// along U's row, so later columns absorb what earlier ones lost. A block's scale is chosen by the block grid
/// (the codec's own search) when the sweep reaches the block's first column, from the values updated so far.
/// <para>
/// Lazy batch updates (the paper's §"Lazy batch-updates"): the columns are swept in batches of
/// <see cref="BatchColumns"/>; inside a batch the error goes to the batch's own later columns at once, and the
/// batch's errors reach the columns after it in one product W[:, i2:] −= E·U[i1:i2, i2:] (a matrix product instead of
/// a rank-one update per column). Rows are independent given U: they are swept in fixed tiles of <see cref="TileRows"/>
/// on worker threads, each tile's products single-threaded, so each row sees the same arithmetic at any thread count.
/// </para>
/// </summary>
internal static class GptqRounding
{
    /// <summary>Columns per lazy batch: a multiple of every grid's block (ggml 32, MatMulNBits 16 to 128), so a block never straddles two batches.</summary>
    public const int BatchColumns = 128;
    /// <summary>Rows per tile (the fixed partition of the work).</summary>
    private const int TileRows = 64;

    /// <summary>
    /// Rounds <paramref name="weight"/> (float32 [rows, cols], contiguous, modified in place into the values a decoder reads
    /// back) and returns the written rows.
    /// </summary>
    /// <param name="factor">upper Cholesky factor of H⁻¹ (see <see cref="HessianFactor"/>)</param>
    public static byte[] Round(Tensor weight, InverseHessianFactor factor, BlockGrid grid, ReadOnlySpan<float> importance, int threads)
    {
        if (weight.dim() != 2 || weight.dtype != ScalarType.Float32 || !weight.is_contiguous()) throw new ArgumentException("the weight must be a contiguous float32 matrix");
        int rows = checked((int)weight.shape[0]), cols = checked((int)weight.shape[1]);
        if (factor.Columns != cols) throw new ArgumentException($"factor has {factor.Columns} columns, the weight {cols}");
        if (cols % grid.BlockSize != 0 || BatchColumns % grid.BlockSize != 0) throw new ArgumentException($"rows of {cols} are not whole blocks of {grid.BlockSize}");
        if (!importance.IsEmpty && importance.Length != cols) throw new ArgumentException($"importance has {importance.Length} entries for rows of {cols}");
        int rowBytes = checked((int)grid.RowBytes(cols));
        var output = new byte[(long)rows * rowBytes];
        var weights = importance.IsEmpty ? null : importance.ToArray();
        int tiles = (rows + TileRows - 1) / TileRows;
        TorchWorkers.For(tiles, threads, tile =>
        {
            int first = tile * TileRows, count = Math.Min(TileRows, rows - first);
            using var scope = NewDisposeScope();
            SweepTile(weight.narrow(0, first, count), factor.Upper, grid, weights, output.AsSpan(first * rowBytes, count * rowBytes), rowBytes);
        });
        return output;
    }

    /// <summary>The same for a weight held in managed memory (the bit budget's KL costs): <paramref name="weight"/> is overwritten with the rounded values.</summary>
    public static byte[] Round(float[] weight, int rows, int cols, InverseHessianFactor factor, BlockGrid grid, ReadOnlySpan<float> importance, int threads = 1)
    {
        if (weight.Length != (long)rows * cols) throw new ArgumentException($"weight has {weight.Length} values, expected {rows} x {cols}");
        using var scope = NewDisposeScope();
        var tensor = TorchMemory.Create([rows, cols], span => weight.CopyTo(span));
        var bytes = Round(tensor, factor, grid, importance, threads);
        TorchMemory.ToArray(tensor).CopyTo(weight, 0);
        return bytes;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SweepTile(Tensor tile, Tensor upper, BlockGrid grid, float[]? importance, Span<byte> output, int rowBytes)
    {
        int count = (int)tile.shape[0], cols = (int)tile.shape[1], blockSize = grid.BlockSize, blocks = cols / blockSize;
        var scales = new BlockScale[count * blocks];
        var levels = new byte[count * cols];
        var errors = zeros([count, BatchColumns], ScalarType.Float32);
        var blockValues = new float[count * blockSize];
        var blockScales = new BlockScale[count];
        float* w = TorchMemory.Pointer(tile), u = TorchMemory.Pointer(upper), e = TorchMemory.Pointer(errors);
        for (int i1 = 0; i1 < cols; i1 += BatchColumns)
        {
            Interruption.ThrowIfRequested();
            int i2 = Math.Min(cols, i1 + BatchColumns);
            for (int i = i1; i < i2; i++)
            {
                int block = i / blockSize;
                if (i % blockSize == 0)
                {
                    // Every row's block at these columns, searched together.
                    for (int r = 0; r < count; r++) new ReadOnlySpan<float>(w + (long)r * cols + i, blockSize).CopyTo(blockValues.AsSpan(r * blockSize, blockSize));
                    grid.ChooseBlocks(blockValues, importance is null ? default : importance.AsSpan(i, blockSize), blockScales);
                    for (int r = 0; r < count; r++) scales[r * blocks + block] = blockScales[r];
                }
                float pivot = u[(long)i * cols + i];
                var uRow = new ReadOnlySpan<float>(u + (long)i * cols + i + 1, i2 - i - 1);
                for (int r = 0; r < count; r++)
                {
                    ref readonly var scale = ref scales[r * blocks + block];
                    float* at = w + (long)r * cols + i;
                    float value = *at;
                    int q = grid.Nearest(scale, value);
                    float rounded = grid.Value(scale, q);
                    levels[r * cols + i] = (byte)q;
                    *at = rounded;
                    float error = pivot > 0 ? (value - rounded) / pivot : 0f;
                    if (error == 0 || !float.IsFinite(error)) error = 0;
                    else SubtractScaled(new Span<float>(at + 1, i2 - i - 1), uRow, error);
                    e[r * BatchColumns + i - i1] = error;
                }
            }
            if (i2 < cols)
            {
                using var scope = NewDisposeScope();
                var batch = errors.narrow(1, 0, i2 - i1);
                var coupling = upper.narrow(0, i1, i2 - i1).narrow(1, i2, cols - i2);
                tile.narrow(1, i2, cols - i2).add_(batch.matmul(coupling), TorchScalars.MinusOne);
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
            int whole = target.Length - target.Length % Vector<float>.Count;
            for (; i < whole; i += Vector<float>.Count)
            {
                var t = new Vector<float>(target[i..]);
                (t - new Vector<float>(source[i..]) * s).CopyTo(target[i..]);
            }
        }
        for (; i < target.Length; i++) target[i] -= source[i] * scale;
    }
}
