using System.Runtime.CompilerServices;
namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// IQ4_NL: 32 values, one fp16 scale and 16 bytes of 4-bit indices into a fixed non-linear table of 16 levels
/// (denser near zero, where weights are); byte j holds element j (low nibble) and j+16 (high nibble). 4.5 bits
/// per weight, like Q4_0, and a block of 32, so it fits Hymba's widths (1600, 3200, 5504) where 256-value K-quants
/// do not. Quantization follows ggml's quantize_iq4_nl (the function llama-quantize calls, with or without an
/// importance matrix): weights x² (or importance · sqrt(σ² + x²), σ² = 2·mean(x²) over the block), a first
/// scale max/127 refined by weighted least squares, then 15 more candidate scales (itry = -7..7) keeping the one
/// that maximises (Σwqx)²/Σwq², and the indices recomputed from the final float scale.
/// </summary>
internal sealed class IQ4_NLFormat : IBlockFormat
{
    /// <summary>ggml's kvalues_iq4nl.</summary>
    internal static ReadOnlySpan<sbyte> Levels => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
    internal const int Tries = 7;

    public GgmlType Type => GgmlType.IQ4_NL;
    public int BlockSize => 32;
    public int BlockBytes => 18;
    public bool UsesImportance => true;
    public BlockGrid Grid { get; }

    public IQ4_NLFormat() => Grid = new GgmlBlockGrid(this, levels: 16, offset: 0, hasMin: false, GgmlBlockGrid.PackNibbles, Levels, weightsPerBlock: true);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance)
    {
        int blocks = BlockFormatGuard.Blocks(this, row.Length, destination.Length, importance);
        int b = 0;
        // Eight blocks at a time, one per vector lane (IQ4_NLVectors); the rest, and groups it declines, one by one.
        for (; b + IQ4_NLVectors.Lanes <= blocks; b += IQ4_NLVectors.Lanes)
        {
            var x = row.Slice(b * 32, 32 * IQ4_NLVectors.Lanes);
            var y = destination.Slice(b * 18, 18 * IQ4_NLVectors.Lanes);
            var qw = importance.IsEmpty ? default : importance.Slice(b * 32, 32 * IQ4_NLVectors.Lanes);
            if (IQ4_NLVectors.TryQuantize(x, y, qw)) continue;
            for (int k = 0; k < IQ4_NLVectors.Lanes; k++)
                QuantizeBlock(x.Slice(k * 32, 32), y.Slice(k * 18, 18), qw.IsEmpty ? default : qw.Slice(k * 32, 32));
        }
        for (; b < blocks; b++)
            QuantizeBlock(row.Slice(b * 32, 32), destination.Slice(b * 18, 18), importance.IsEmpty ? default : importance.Slice(b * 32, 32));
    }

    /// <summary>ggml's quantize_row_iq4_nl_impl for one block: the definition the vector path is tested against, and its fallback.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y, ReadOnlySpan<float> qw)
    {
        var levels = Levels;
        Span<float> weight = stackalloc float[32];
        Span<byte> L = stackalloc byte[32];
        float sigma2 = 0;
        for (int j = 0; j < 32; j++) sigma2 += x[j] * x[j];
        sigma2 *= 2f / 32;
        for (int j = 0; j < 32; j++) weight[j] = qw.IsEmpty ? x[j] * x[j] : qw[j] * MathF.Sqrt(sigma2 + x[j] * x[j]);

        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
        {
            float ax = MathF.Abs(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        float scale = 0;
        if (amax >= QuantMath.GroupMaxEps)
        {
            float d = -max / levels[0];
            float id = 1 / d;
            float sumqx = 0, sumq2 = 0;
            for (int j = 0; j < 32; j++)
            {
                float q = levels[BestIndex(id * x[j])];
                float w = weight[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0f;
            float best = d * sumqx;
            for (int itry = -Tries; itry <= Tries; itry++)
            {
                id = (itry + levels[0]) / max;
                sumqx = sumq2 = 0;
                for (int j = 0; j < 32; j++)
                {
                    float q = levels[BestIndex(id * x[j])];
                    float w = weight[j];
                    sumqx += w * q * x[j];
                    sumq2 += w * q * q;
                }
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
                {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
            scale = d;
        }
        QuantMath.WriteHalf(y, scale);
        // The indices come from the float scale, not the fp16 one that is stored (as in ggml).
        float inverse = scale != 0 ? 1 / scale : 0;
        for (int j = 0; j < 32; j++) L[j] = (byte)BestIndex(inverse * x[j]);
        for (int j = 0; j < 16; j++) y[2 + j] = (byte)(L[j] | (L[j + 16] << 4));
    }

    /// <summary>Index of the level nearest to v (ties to the lower one), by bisection as ggml's best_index_int8.</summary>
    private static int BestIndex(float v)
    {
        var levels = Levels;
        if (v <= levels[0]) return 0;
        if (v >= levels[15]) return 15;
        int lo = 0, hi = 15;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (v < levels[mid]) hi = mid; else lo = mid;
        }
        return v - levels[hi - 1] < levels[hi] - v ? hi - 1 : hi;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination)
    {
        var levels = Levels;
        int blocks = BlockFormatGuard.BlocksFromBytes(this, source.Length, destination.Length);
        for (int b = 0; b < blocks; b++)
        {
            var y = source.Slice(b * 18, 18);
            var x = destination.Slice(b * 32, 32);
            float d = QuantMath.ReadHalf(y);
            for (int j = 0; j < 16; j++)
            {
                x[j] = d * levels[y[2 + j] & 0xF];
                x[j + 16] = d * levels[y[2 + j] >> 4];
            }
        }
    }
}
