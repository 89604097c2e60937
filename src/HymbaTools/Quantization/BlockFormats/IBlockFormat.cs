namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// A ggml block codec. Quantize and dequantize whole rows (a row is a whole number of blocks). With empty
/// <c>importance</c> the quantizer is ggml's <c>quantize_row_*_ref</c> (the bytes llama-quantize writes without
/// an imatrix); with per-column importance it is ggml's importance-weighted <c>quantize_row_*_impl</c>.
/// Implementations keep every multiply and add separately rounded in float32 in the reference order (no
/// fused multiply-add), because that is what makes the bytes identical to ggml's x86-64 builds.
/// </summary>
internal interface IBlockFormat
{
    GgmlType Type { get; }
    int BlockSize { get; }
    int BlockBytes { get; }
    /// <summary>Whether importance weights change the result (Q8_0 and float types ignore them).</summary>
    bool UsesImportance { get; }
    /// <summary>The representable values for error-compensated rounding (GPTQ), or null when the type offers none here (floats, K types).</summary>
    BlockGrid? Grid { get; }
    void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance);
    void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination);
}

/// <summary>Shared argument checks for block codecs.</summary>
internal static class BlockFormatGuard
{
    public static int Blocks(IBlockFormat format, int rowLength, int destinationBytes, ReadOnlySpan<float> importance)
    {
        if (rowLength % format.BlockSize != 0)
            throw new ArgumentException($"{GgmlTypes.NameOf(format.Type)}: row of {rowLength} elements is not a multiple of the block size {format.BlockSize}");
        int blocks = rowLength / format.BlockSize;
        if (destinationBytes < blocks * format.BlockBytes) throw new ArgumentException("destination too short");
        if (!importance.IsEmpty && importance.Length != rowLength) throw new ArgumentException($"importance has {importance.Length} entries for a row of {rowLength}");
        return blocks;
    }

    public static int BlocksFromBytes(IBlockFormat format, int sourceBytes, int destinationLength)
    {
        if (sourceBytes % format.BlockBytes != 0) throw new ArgumentException("source is not a whole number of blocks");
        int blocks = sourceBytes / format.BlockBytes;
        if (destinationLength < blocks * format.BlockSize) throw new ArgumentException("destination too short");
        return blocks;
    }
}
