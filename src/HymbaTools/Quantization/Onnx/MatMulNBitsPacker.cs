namespace HymbaTools.Quantization.Onnx;

/// <summary>The three MatMulNBits inputs for one weight: B, scales and (asymmetric only) zero points.</summary>
internal sealed record MatMulNBitsWeight(int N, int K, int Bits, int BlockSize, byte[] B, float[] Scales, byte[]? ZeroPoints)
{
    public int BlocksPerRow => (K + BlockSize - 1) / BlockSize;
    public int BlobSize => BlockSize * Bits / 8;
    /// <summary>Shape of B: [N, k_blocks, blob_size].</summary>
    public long[] BShape => [N, BlocksPerRow, BlobSize];
    /// <summary>Shape of zero_points: [N, ceil(k_blocks * bits / 8)].</summary>
    public long[] ZeroPointShape => [N, (BlocksPerRow * Bits + 7) / 8];
}

/// <summary>
/// Round-to-nearest blockwise quantization of a Linear weight [N = out, K = in] in the exact packed layout of
/// ONNX Runtime's <c>com.microsoft.MatMulNBits</c>: B is [N, k_blocks, block_size*bits/8] with, for 4 bits,
/// element 2i of a block in the low nibble and 2i+1 in the high nibble; scales are [N * k_blocks] float;
/// zero points (asymmetric) are packed like B along the blocks of a row (low nibble = even block), and the
/// default zero point is 2^(bits-1). A last partial block is padded so that it dequantizes to 0.
/// Dequantized value: (q - zero_point) * scale, and Y = A * dequant(B)^T. The rules follow MLAS's blockwise
/// quantizer: symmetric scale = max / -2^(bits-1) with max the signed value of largest magnitude;
/// asymmetric range extended to include 0, scale = (max - min) / (2^bits - 1), zp = round(-min / scale).
/// </summary>
internal static class MatMulNBitsPacker
{
    public static readonly int[] SupportedBlockSizes = [16, 32, 64, 128];

    /// <summary>Bytes of a weight [rows, columns] as MatMulNBits stores it: per row, its blocks (a partial last one padded) and a float32 scale per block.</summary>
    public static long Bytes(long rows, long columns, int bits, int blockSize) => rows * ((columns + blockSize - 1) / blockSize) * (blockSize * bits / 8 + 4);

    public static MatMulNBitsWeight Quantize(ReadOnlySpan<float> weight, int n, int k, int bits, int blockSize, bool symmetric)
    {
        Check(weight.Length, n, k, bits, blockSize);
        int blocks = (k + blockSize - 1) / blockSize;
        var b = new byte[(long)n * blocks * (blockSize * bits / 8)];
        var scales = new float[(long)n * blocks];
        byte[]? zeroPoints = symmetric ? null : new byte[(long)n * ((blocks * bits + 7) / 8)];
        QuantizeInto(weight, n, k, bits, blockSize, b, scales, zeroPoints);
        return new MatMulNBitsWeight(n, k, bits, blockSize, b, scales, zeroPoints);
    }

    private static void Check(int length, int n, int k, int bits, int blockSize)
    {
        if (bits is not (4 or 8)) throw new ArgumentOutOfRangeException(nameof(bits), "bits must be 4 or 8");
        if (!SupportedBlockSizes.Contains(blockSize)) throw new ArgumentOutOfRangeException(nameof(blockSize), "block size must be 16, 32, 64 or 128");
        if (length != (long)n * k) throw new ArgumentException($"weight has {length} values, expected {n} x {k}");
    }

    /// <summary>
    /// <see cref="Quantize"/> into the caller's buffers (B [N * k_blocks * blob], scales [N * k_blocks], zero points or
    /// null for symmetric), so a streaming writer reuses one buffer for every weight instead of allocating each.
    /// </summary>
    public static void QuantizeInto(ReadOnlySpan<float> weight, int n, int k, int bits, int blockSize, Span<byte> b, Span<float> scales, Span<byte> zeroPoints)
    {
        Check(weight.Length, n, k, bits, blockSize);
        bool symmetric = zeroPoints.IsEmpty;
        int blocks = (k + blockSize - 1) / blockSize;
        int blob = blockSize * bits / 8;
        int levels = (1 << bits) - 1;
        int defaultZero = 1 << (bits - 1);
        int zpBytesPerRow = (blocks * bits + 7) / 8;
        if (b.Length < (long)n * blocks * blob || scales.Length < (long)n * blocks || (!symmetric && zeroPoints.Length < (long)n * zpBytesPerRow))
            throw new ArgumentException("output buffers are too small");
        if (!symmetric) zeroPoints[..(n * zpBytesPerRow)].Clear();
        Span<int> q = stackalloc int[blockSize];
        for (int row = 0; row < n; row++)
        {
            var w = weight.Slice(row * k, k);
            for (int block = 0; block < blocks; block++)
            {
                int start = block * blockSize, length = Math.Min(blockSize, k - start);
                var x = w.Slice(start, length);
                float scale;
                int zero;
                if (symmetric)
                {
                    float amax = 0, max = 0;
                    foreach (float v in x)
                        if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
                    scale = max / -defaultZero;
                    zero = defaultZero;
                }
                else
                {
                    float min = 0, max = 0;
                    foreach (float v in x) { min = MathF.Min(min, v); max = MathF.Max(max, v); }
                    scale = (max - min) / levels;
                    zero = scale != 0 ? Math.Clamp((int)MathF.Round(-min / scale, MidpointRounding.ToEven), 0, levels) : defaultZero;
                }
                float reciprocal = scale != 0 ? 1f / scale : 0f;
                for (int j = 0; j < blockSize; j++)
                    q[j] = j < length ? Math.Clamp((int)MathF.Round(x[j] * reciprocal, MidpointRounding.ToEven) + zero, 0, levels) : zero;
                scales[row * blocks + block] = scale;
                var dst = b.Slice((int)(((long)row * blocks + block) * blob), blob);
                if (bits == 4)
                    for (int j = 0; j < blockSize; j += 2) dst[j / 2] = (byte)(q[j] | (q[j + 1] << 4));
                else
                    for (int j = 0; j < blockSize; j++) dst[j] = (byte)q[j];
                if (!symmetric)
                {
                    int at = row * zpBytesPerRow;
                    if (bits == 4) zeroPoints[at + block / 2] |= (byte)(block % 2 == 0 ? zero : zero << 4);
                    else zeroPoints[at + block] = (byte)zero;
                }
            }
        }
    }

    /// <summary>The weight [N, K] that MatMulNBits computes with (for tests and accuracy reports).</summary>
    public static float[] Dequantize(MatMulNBitsWeight w)
    {
        var result = new float[(long)w.N * w.K];
        int blocks = w.BlocksPerRow, blob = w.BlobSize, zpBytesPerRow = (blocks * w.Bits + 7) / 8;
        for (int row = 0; row < w.N; row++)
            for (int block = 0; block < blocks; block++)
            {
                float scale = w.Scales[row * blocks + block];
                int zero = 1 << (w.Bits - 1);
                if (w.ZeroPoints is not null)
                {
                    byte z = w.ZeroPoints[row * zpBytesPerRow + (w.Bits == 4 ? block / 2 : block)];
                    zero = w.Bits == 4 ? (block % 2 == 0 ? z & 0xF : z >> 4) : z;
                }
                int offset = (row * blocks + block) * blob;
                for (int j = 0; j < w.BlockSize; j++)
                {
                    int k = block * w.BlockSize + j;
                    if (k >= w.K) break;
                    int q = w.Bits == 4 ? (j % 2 == 0 ? w.B[offset + j / 2] & 0xF : w.B[offset + j / 2] >> 4) : w.B[offset + j];
                    result[(long)row * w.K + k] = (q - zero) * scale;
                }
            }
        return result;
    }
}
