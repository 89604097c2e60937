using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Quantization.Onnx;

/// <summary>
/// ONNX Runtime's MatMulNBits blocks (symmetric, 4 or 8 bits, blocks of 16 to 128) as a grid for the GPTQ sweep:
/// 4-bit scales come from ggml's make_qx_quants search (importance-weighted when given), 8-bit ones are MLAS's (the
/// signed value of largest magnitude over -128); levels read (q − 2^(bits-1)) · scale.
/// A written row is the row's packed blocks (as <see cref="MatMulNBitsPacker"/> lays them out) followed by
/// its float32 scales; <see cref="Split"/> separates them into the operator's B and scales inputs.
/// </summary>
internal sealed class MatMulNBitsGrid : BlockGrid
{
    private readonly int _bits, _blockSize, _zero, _levels;

    public MatMulNBitsGrid(int bits, int blockSize)
    {
        if (bits is not (4 or 8)) throw new ArgumentOutOfRangeException(nameof(bits), "bits must be 4 or 8");
        if (!MatMulNBitsPacker.SupportedBlockSizes.Contains(blockSize)) throw new ArgumentOutOfRangeException(nameof(blockSize));
        _bits = bits;
        _blockSize = blockSize;
        _zero = 1 << (bits - 1);
        _levels = (1 << bits) - 1;
    }

    public override int BlockSize => _blockSize;
    private int BlobSize => _blockSize * _bits / 8;

    public override long RowBytes(int columns) => (long)columns / _blockSize * (BlobSize + 4);

    public override BlockScale Choose(ReadOnlySpan<float> block, ReadOnlySpan<float> importance)
    {
        if (_bits == 4)
        {
            // MatMulNBits takes any float scale: search it as ggml does for its 4-bit blocks (make_qx_quants,
            // weighted by the importance when given, else by x²), not only MLAS's max / -8.
            Span<sbyte> levels = stackalloc sbyte[_blockSize];
            float d = QuantMath.MakeQxQuants(_blockSize, _zero, block, levels, 1, importance);
            return new BlockScale(d, d != 0 ? 1f / d : 0f, 0, 0);
        }
        float amax = 0, max = 0;
        foreach (float v in block)
            if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
        float scale = max / -_zero;
        return new BlockScale(scale, scale != 0 ? 1f / scale : 0f, 0, 0);
    }

    public override int Nearest(in BlockScale scale, float value)
    {
        float t = value * scale.M;   // M holds the reciprocal, as the packer multiplies by it
        if (!float.IsFinite(t)) return _zero;
        return Math.Clamp((int)MathF.Round(Math.Clamp(t, -1e6f, 1e6f), MidpointRounding.ToEven) + _zero, 0, _levels);
    }

    public override float Value(in BlockScale scale, int level) => (level - _zero) * scale.D;

    public override void WriteRow(ReadOnlySpan<BlockScale> scales, ReadOnlySpan<byte> levels, Span<byte> destination)
    {
        int blob = BlobSize;
        for (int b = 0; b < scales.Length; b++)
        {
            var q = levels.Slice(b * _blockSize, _blockSize);
            var dst = destination.Slice(b * blob, blob);
            if (_bits == 4)
                for (int j = 0; j < _blockSize; j += 2) dst[j / 2] = (byte)(q[j] | (q[j + 1] << 4));
            else
                q.CopyTo(dst);
            BitConverter.TryWriteBytes(destination.Slice(scales.Length * blob + b * 4, 4), scales[b].D);
        }
    }

    /// <summary>Rows written by this grid, split into MatMulNBits' B [rows, blocks, blob] and scales [rows * blocks].</summary>
    public (byte[] B, float[] Scales) Split(byte[] rowsBytes, int rows, int columns)
    {
        int blocks = columns / _blockSize, blob = BlobSize, rowBytes = (int)RowBytes(columns);
        var b = new byte[(long)rows * blocks * blob];
        var scales = new float[(long)rows * blocks];
        for (int r = 0; r < rows; r++)
        {
            rowsBytes.AsSpan(r * rowBytes, blocks * blob).CopyTo(b.AsSpan(r * blocks * blob));
            for (int k = 0; k < blocks; k++) scales[r * blocks + k] = BitConverter.ToSingle(rowsBytes, r * rowBytes + blocks * blob + k * 4);
        }
        return (b, scales);
    }
}
