using System.Runtime.CompilerServices;
namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// Q4_K (and, with 5 bits, Q5_K): 256-value super-blocks of eight 32-value sub-blocks, each with a 6-bit
/// scale and min; fp16 super-scales d and dmin. Layout d, dmin, scales[12], [qh[32] for Q5_K], qs[128].
/// Without importance this is quantize_row_q{4,5}_K_ref (make_qkx2_quants per sub-block, see QuantMath), with importance
/// quantize_row_q{4,5}_K_impl (make_qkx3_quants and make_qp_quants for the scales).
/// </summary>
internal abstract class KQuantAsymmetric : IBlockFormat
{
    protected abstract int Bits { get; }
    public abstract GgmlType Type { get; }
    public int BlockSize => 256;
    public abstract int BlockBytes { get; }
    public bool UsesImportance => true;
    public BlockGrid? Grid => null;
    private int Nmax => (1 << Bits) - 1;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance)
    {
        int blocks = BlockFormatGuard.Blocks(this, row.Length, destination.Length, importance);
        Span<byte> L = stackalloc byte[256];
        Span<byte> Laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        Span<float> sw = stackalloc float[8];
        Span<byte> ls = stackalloc byte[8];
        Span<byte> lm = stackalloc byte[8];
        for (int b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * 256, 256);
            var y = destination.Slice(b * BlockBytes, BlockBytes);
            var scaleBytes = y.Slice(4, 12);
            scaleBytes.Clear();
            float d, dmin;
            if (importance.IsEmpty)
            {
                float maxScale = 0, maxMin = 0;
                for (int j = 0; j < 8; ++j)
                {
                    var xs = x.Slice(32 * j, 32);
                    float sumX2 = 0;
                    for (int l = 0; l < 32; ++l) sumX2 += xs[l] * xs[l];
                    float avX = MathF.Sqrt(sumX2 / 32);
                    for (int l = 0; l < 32; ++l) weights[l] = avX + MathF.Abs(xs[l]);
                    scales[j] = Bits == 4
                        ? QuantMath.MakeQkx3Quants(32, Nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], Laux, -1f, 0.1f, 20, false)
                        : QuantMath.MakeQkx3Quants(32, Nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], Laux, -0.5f, 0.1f, 15, false);
                    if (scales[j] > maxScale) maxScale = scales[j];
                    if (mins[j] > maxMin) maxMin = mins[j];
                }
                float invScale = maxScale > 0 ? 63f / maxScale : 0f;
                float invMin = maxMin > 0 ? 63f / maxMin : 0f;
                for (int j = 0; j < 8; ++j)
                {
                    ls[j] = Math.Min((byte)63, (byte)QuantMath.NearestInt(invScale * scales[j]));
                    lm[j] = Math.Min((byte)63, (byte)QuantMath.NearestInt(invMin * mins[j]));
                }
                QuantMath.PackScalesMins(ls, lm, scaleBytes);
                d = QuantMath.WriteHalf(y, maxScale / 63f);
                dmin = QuantMath.WriteHalf(y[2..], maxMin / 63f);
            }
            else
            {
                float sumX2 = 0;
                for (int l = 0; l < 256; ++l) sumX2 += x[l] * x[l];
                float sigma2 = 2 * sumX2 / 256;
                for (int j = 0; j < 8; ++j)
                {
                    var xs = x.Slice(32 * j, 32);
                    var qw = importance.Slice(b * 256 + 32 * j, 32);
                    for (int l = 0; l < 32; ++l) weights[l] = qw[l] * MathF.Sqrt(sigma2 + xs[l] * xs[l]);
                    float sumw = 0;
                    for (int l = 0; l < 32; ++l) sumw += weights[l];
                    sw[j] = sumw;
                    scales[j] = QuantMath.MakeQkx3Quants(32, Nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], Laux, -0.9f, 0.05f, 36, false);
                }
                float dBlock = QuantMath.MakeQpQuants(8, 63, scales, ls, sw);
                float mBlock = QuantMath.MakeQpQuants(8, 63, mins, lm, sw);
                for (int j = 0; j < 8; ++j) { ls[j] = Math.Min((byte)63, ls[j]); lm[j] = Math.Min((byte)63, lm[j]); }
                QuantMath.PackScalesMins(ls, lm, scaleBytes);
                d = QuantMath.WriteHalf(y, dBlock);
                dmin = QuantMath.WriteHalf(y[2..], mBlock);
            }

            // Requantize with the fp16-rounded super-scales; sub-blocks with a zero scale keep the search's L.
            for (int j = 0; j < 8; ++j)
            {
                QuantMath.GetScaleMinK4(j, scaleBytes, out byte sc, out byte m);
                float dj = d * sc;
                if (dj == 0) continue;
                float dm = dmin * m;
                for (int ii = 0; ii < 32; ++ii)
                {
                    int l = QuantMath.NearestInt((x[32 * j + ii] + dm) / dj);
                    L[32 * j + ii] = (byte)Math.Max(0, Math.Min(Nmax, l));
                }
            }
            PackQuants(L, y);
        }
    }

    protected abstract void PackQuants(ReadOnlySpan<byte> L, Span<byte> block);
    protected abstract int QuantAt(ReadOnlySpan<byte> block, int index);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = BlockFormatGuard.BlocksFromBytes(this, source.Length, destination.Length);
        for (int b = 0; b < blocks; b++)
        {
            var y = source.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.ReadHalf(y), min = QuantMath.ReadHalf(y[2..]);
            var scaleBytes = y.Slice(4, 12);
            for (int j = 0; j < 8; j++)
            {
                QuantMath.GetScaleMinK4(j, scaleBytes, out byte sc, out byte m);
                float d1 = d * sc, m1 = min * m;
                for (int l = 0; l < 32; l++) destination[b * 256 + 32 * j + l] = d1 * QuantAt(y, 32 * j + l) - m1;
            }
        }
    }
}

internal sealed class Q4_KFormat : KQuantAsymmetric
{
    protected override int Bits => 4;
    public override GgmlType Type => GgmlType.Q4_K;
    public override int BlockBytes => 144;

    // qs: 4 chunks of 64 values, byte l of chunk c = q[64c + l] | q[64c + 32 + l] << 4
    protected override void PackQuants(ReadOnlySpan<byte> L, Span<byte> block)
    {
        var q = block.Slice(16, 128);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) q[32 * c + l] = (byte)(L[64 * c + l] | (L[64 * c + l + 32] << 4));
    }

    protected override int QuantAt(ReadOnlySpan<byte> block, int index)
    {
        int c = index / 64, r = index % 64;
        byte v = block[16 + 32 * c + r % 32];
        return r < 32 ? v & 0xF : v >> 4;
    }
}

internal sealed class Q5_KFormat : KQuantAsymmetric
{
    protected override int Bits => 5;
    public override GgmlType Type => GgmlType.Q5_K;
    public override int BlockBytes => 176;

    // qh[32] then qs[128]; bit 4 of q[64c + j] goes to qh[j] bit 2c, of q[64c + 32 + j] to bit 2c+1
    protected override void PackQuants(ReadOnlySpan<byte> L, Span<byte> block)
    {
        var qh = block.Slice(16, 32);
        var ql = block.Slice(48, 128);
        qh.Clear();
        byte m1 = 1, m2 = 2;
        for (int c = 0; c < 4; c++)
        {
            for (int j = 0; j < 32; j++)
            {
                int l1 = L[64 * c + j];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                int l2 = L[64 * c + j + 32];
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[32 * c + j] = (byte)(l1 | (l2 << 4));
            }
            m1 <<= 2;
            m2 <<= 2;
        }
    }

    protected override int QuantAt(ReadOnlySpan<byte> block, int index)
    {
        int c = index / 64, r = index % 64, j = r % 32;
        byte low = block[48 + 32 * c + j];
        bool high = r < 32;
        int value = high ? low & 0xF : low >> 4;
        int bit = (block[16 + j] >> (2 * c + (high ? 0 : 1))) & 1;
        return value + 16 * bit;
    }
}
