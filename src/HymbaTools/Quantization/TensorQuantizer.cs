using System.Runtime.CompilerServices;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Quantization;

/// <summary>Fills rows [firstRow, firstRow + count) of a float32 matrix into the destination span.</summary>
internal delegate void RowSource(long firstRow, int count, Span<float> destination);

/// <summary>
/// Quantizes a [rows, cols] float32 matrix row by row into a stream: rows are read in bounded chunks,
/// widened and quantized in parallel (rows are independent), and written in order, so memory stays at two
/// chunks whatever the tensor size and the output does not depend on the thread count. Writing (and whatever
/// the output stream does on the way, such as hashing) runs beside the quantizing of the next chunk.
/// </summary>
internal static class TensorQuantizer
{
    /// <summary>Floats per chunk (16 MB of float32 input).</summary>
    public const int ChunkElements = 1 << 22;

    public static void Quantize(GgmlType type, long rows, int cols, RowSource source, float[]? importance, Stream output, int? maxParallelism = null)
    {
        var format = BlockFormatRegistry.Get(type);
        if (cols % format.BlockSize != 0)
            throw new ArgumentException($"{GgmlTypes.NameOf(type)} needs rows that are a multiple of {format.BlockSize} values, got {cols}");
        if (importance is not null && importance.Length != cols)
            throw new ArgumentException($"importance has {importance.Length} entries for rows of {cols}");
        int rowBytes = (int)GgmlTypes.RowBytes(type, cols);
        int chunkRows = (int)Math.Max(1, Math.Min(rows, ChunkElements / Math.Max(1, cols)));
        // Pooled buffers: a tensor-by-tensor export would otherwise allocate (and page in) fresh large arrays
        // per tensor, which costs more than quantizing the fast types. Two output buffers: one being written
        // while the next chunk is quantized into the other.
        var input = System.Buffers.ArrayPool<float>.Shared.Rent(chunkRows * cols);
        byte[][] outputs = [System.Buffers.ArrayPool<byte>.Shared.Rent(chunkRows * rowBytes), System.Buffers.ArrayPool<byte>.Shared.Rent(chunkRows * rowBytes)];
        var writing = Task.CompletedTask;
        try
        {
            var weights = importance is null || !format.UsesImportance ? null : importance;
            var options = new ParallelOptions { MaxDegreeOfParallelism = maxParallelism ?? HymbaTools.Common.ComputeThreads.Count };
            // Rows go to the workers in contiguous ranges (one delegate call per range, not per row). Each row is
            // widened from the source right before it is quantized, while it is still in the core's cache, so
            // reading is spread over the workers too and the float32 copy never travels to memory and back.
            int ranges = Math.Max(1, options.MaxDegreeOfParallelism * 4);
            for (long first = 0, chunk = 0; first < rows; first += chunkRows, chunk++)
            {
                HymbaTools.Common.Interruption.ThrowIfRequested();
                int count = (int)Math.Min(chunkRows, rows - first);
                var bytes = outputs[chunk & 1];
                int perRange = (count + ranges - 1) / ranges;
                long chunkFirst = first;
                Parallel.For(0, (count + perRange - 1) / perRange, options, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (range) =>
                {
                    int begin = range * perRange, end = Math.Min(count, begin + perRange);
                    for (int r = begin; r < end; r++)
                    {
                        var row = input.AsSpan(r * cols, cols);
                        source(chunkFirst + r, 1, row);
                        format.QuantizeRow(row, bytes.AsSpan(r * rowBytes, rowBytes), weights);
                    }
                });
                writing.GetAwaiter().GetResult();   // in order, and the other buffer is free again
                int length = count * rowBytes;
                writing = Task.Run(() => output.Write(bytes, 0, length));
            }
            writing.GetAwaiter().GetResult();
        }
        finally
        {
            // A failed chunk must not leave a write running into a buffer that goes back to the pool.
            try { writing.Wait(); } catch (AggregateException) { /* already surfaced, or superseded by the failure in flight */ }
            System.Buffers.ArrayPool<float>.Shared.Return(input);
            foreach (var buffer in outputs) System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Quantizes a whole in-memory matrix (tests, small tensors).</summary>
    public static byte[] Quantize(GgmlType type, ReadOnlySpan<float> matrix, int cols, float[]? importance = null)
    {
        if (matrix.Length % cols != 0) throw new ArgumentException("matrix length is not a multiple of cols");
        var copy = matrix.ToArray();
        using var ms = new MemoryStream();
        Quantize(type, copy.Length / cols, cols, (first, count, dst) => copy.AsSpan((int)(first * cols), count * cols).CopyTo(dst), importance, ms);
        return ms.ToArray();
    }

    public static float[] Dequantize(GgmlType type, ReadOnlySpan<byte> data, long elements)
    {
        var format = BlockFormatRegistry.Get(type);
        var result = new float[elements];
        format.DequantizeRow(data, result);
        return result;
    }
}
