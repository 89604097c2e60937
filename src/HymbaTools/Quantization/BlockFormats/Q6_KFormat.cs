using System.Runtime.CompilerServices;
namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// Q6_K: 256-value super-blocks of sixteen 16-value sub-blocks with int8 scales and one fp16 d.
/// Layout ql[128], qh[64], scales[16], d. quantize_row_q6_K_ref / _impl (importance as make_qx_quants weights).
/// </summary>
internal sealed class Q6_KFormat : IBlockFormat
{
    public GgmlType Type => GgmlType.Q6_K;
    public int BlockSize => 256;
    public int BlockBytes => 210;
    public bool UsesImportance => true;
    public BlockGrid? Grid => null;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance)
    {
        int blocks = BlockFormatGuard.Blocks(this, row.Length, destination.Length, importance);
        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        for (int b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * 256, 256);
            var y = destination.Slice(b * 210, 210);
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ++ib)
            {
                var weights = importance.IsEmpty ? ReadOnlySpan<float>.Empty : importance.Slice(b * 256 + 16 * ib, 16);
                float scale = QuantMath.MakeQxQuants(16, 32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16), 1, weights);
                scales[ib] = scale;
                float absScale = MathF.Abs(scale);
                if (absScale > maxAbsScale) { maxAbsScale = absScale; maxScale = scale; }
            }
            if (maxAbsScale < QuantMath.GroupMaxEps)
            {
                y.Clear();
                QuantMath.WriteHalf(y[208..], 0f);
                continue;
            }
            float iscale = -128f / maxScale;
            float d = QuantMath.WriteHalf(y[208..], 1 / iscale);
            var sc = y.Slice(192, 16);
            for (int ib = 0; ib < 16; ++ib) sc[ib] = (byte)(sbyte)Math.Min(127, QuantMath.NearestInt(iscale * scales[ib]));
            for (int j = 0; j < 16; ++j)
            {
                float dj = d * (sbyte)sc[j];
                if (dj == 0) continue;
                for (int ii = 0; ii < 16; ++ii)
                {
                    int l = QuantMath.NearestInt(x[16 * j + ii] / dj);
                    l = Math.Max(-32, Math.Min(31, l));
                    L[16 * j + ii] = (sbyte)(l + 32);
                }
            }
            var ql = y[..128];
            var qh = y.Slice(128, 64);
            for (int half = 0; half < 2; half++)
            {
                int j = 128 * half;
                for (int l = 0; l < 32; ++l)
                {
                    int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                    ql[64 * half + l] = (byte)(q1 | (q3 << 4));
                    ql[64 * half + l + 32] = (byte)(q2 | (q4 << 4));
                    qh[32 * half + l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = BlockFormatGuard.BlocksFromBytes(this, source.Length, destination.Length);
        for (int b = 0; b < blocks; b++)
        {
            var x = source.Slice(b * 210, 210);
            float d = QuantMath.ReadHalf(x[208..]);
            var y = destination.Slice(b * 256, 256);
            for (int half = 0; half < 2; half++)
            {
                var ql = x.Slice(64 * half, 64);
                var qh = x.Slice(128 + 32 * half, 32);
                var sc = x.Slice(192 + 8 * half, 8);
                var yy = y.Slice(128 * half, 128);
                for (int l = 0; l < 32; ++l)
                {
                    int s = l / 16;
                    int q1 = (sbyte)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = (sbyte)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = (sbyte)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = (sbyte)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    yy[l] = d * (sbyte)sc[s] * q1;
                    yy[l + 32] = d * (sbyte)sc[s + 2] * q2;
                    yy[l + 64] = d * (sbyte)sc[s + 4] * q3;
                    yy[l + 96] = d * (sbyte)sc[s + 6] * q4;
                }
            }
        }
    }
}
