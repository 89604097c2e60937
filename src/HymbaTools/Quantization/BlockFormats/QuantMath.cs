using System.Runtime.CompilerServices;

namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// Scalar helpers shared by the ggml codecs, ported from ggml-quants.c operation by operation (float32,
/// no fused multiply-add, same evaluation order) so that the produced bytes are identical.
/// </summary>
internal static class QuantMath
{
    /// <summary>GROUP_MAX_EPS: a group whose max |x| is below this is treated as all zero.</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>ggml nearest_int: add 1.5*2^23 and read the mantissa (round half to even for |x| &lt;= 4194303).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float value)
    {
        float shifted = value + 12582912f;
        int bits = BitConverter.SingleToInt32Bits(shifted);
        return (bits & 0x007fffff) - 0x00400000;
    }

    /// <summary>
    /// C's float -> small-integer conversion as x86-64 compilers emit it (cvttss2si to int32, then keep the low
    /// bits): truncation toward zero, and NaN or out-of-range values give INT_MIN. ggml relies on this for
    /// blocks whose reciprocal scale overflows (denormal inputs), so the bytes match only if we do too.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int TruncateX86(float value) =>
        value is >= -2147483648f and < 2147483648f ? (int)value : int.MinValue;

    /// <summary>The signed value of largest magnitude; the first one wins ties (ggml's Q4_0/Q5_0 scale source).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float SignedMaxByMagnitude(ReadOnlySpan<float> x)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
            if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
        return max;
    }

    /// <summary>Block minimum and maximum, in ggml's scan order (Q4_1/Q5_1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MinMax(ReadOnlySpan<float> x, out float min, out float max)
    {
        min = float.MaxValue;
        max = -float.MaxValue;
        foreach (float v in x)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
    }

    /// <summary>sum(x^2) / n of a whole row, accumulated left to right in float32 (sigma^2 of the importance weights).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float MeanSquare(ReadOnlySpan<float> row)
    {
        float sum = 0;
        foreach (float v in row) sum += v * v;
        return sum / row.Length;
    }

    /// <summary>ggml's importance weights of the 32-blocks: qw * sqrt(sigma^2 + x^2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ImportanceWeights(ReadOnlySpan<float> x, ReadOnlySpan<float> qw, float sigma2, Span<float> weight)
    {
        for (int j = 0; j < x.Length; j++) weight[j] = qw[j] * MathF.Sqrt(sigma2 + x[j] * x[j]);
    }

    /// <summary>IEEE float32 -> float16 bits, round to nearest even (GGML_FP32_TO_FP16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToHalfBits(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromHalfBits(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Writes a float16 (little-endian) and returns the float32 value it rounds to.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float WriteHalf(Span<byte> destination, float value)
    {
        ushort bits = ToHalfBits(value);
        destination[0] = (byte)bits;
        destination[1] = (byte)(bits >> 8);
        return FromHalfBits(bits);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ReadHalf(ReadOnlySpan<byte> source) => FromHalfBits((ushort)(source[0] | (source[1] << 8)));

    /// <summary>
    /// make_qx_quants: symmetric quantization of n values to [-nmax, nmax-1] with an RMSE-refined scale.
    /// L receives l + nmax. rmse_type 1 uses weights x^2 (or <paramref name="weights"/> when given).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float MakeQxQuants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L, int rmseType, ReadOnlySpan<float> weights)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; ++i)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            for (int i = 0; i < n; ++i) L[i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        if (rmseType == 0)
        {
            for (int i = 0; i < n; ++i)
            {
                int l = NearestInt(iscale * x[i]);
                L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
            }
            return 1 / iscale;
        }
        bool hasWeights = !weights.IsEmpty;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; ++i)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
            float w = hasWeights ? weights[i] : Weight(rmseType, x[i]);
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; ++step)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; ++i)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                float w = hasWeights ? weights[i] : Weight(rmseType, x[i]);
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; ++i)
                {
                    int l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Weight(int rmseType, float x) => rmseType switch
    {
        1 => x * x,
        2 => 1,
        3 => MathF.Abs(x),
        _ => MathF.Sqrt(MathF.Abs(x)),
    };

    /// <summary>
    /// make_qkx3_quants, the asymmetric (scale, min) search of the K-quants and Q4_1/Q5_1 with importance:
    /// weights given, or x^2 when empty. With explicit weights it is operation for operation ggml's
    /// make_qkx2_quants too (the two differ only in the x^2 default and an equivalent max == min test), so
    /// the reference K-quant paths call it with their av_x + |x| weights.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float MakeQkx3Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> L, out float theMin,
        Span<byte> Laux, float rmin, float rdelta, int nstep, bool useMad)
    {
        bool hasWeights = !weights.IsEmpty;
        float min = x[0], max = x[0];
        float sumW = hasWeights ? weights[0] : x[0] * x[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; ++i)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = hasWeights ? weights[i] : x[i] * x[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max <= min)
        {
            L[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestMad = 0;
        for (int i = 0; i < n; ++i)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            float w = hasWeights ? weights[i] : x[i] * x[i];
            bestMad += w * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; ++step)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXl = 0;
            for (int i = 0; i < n; ++i)
            {
                int l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                Laux[i] = (byte)l;
                float w = hasWeights ? weights[i] : x[i] * x[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXl += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXl - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXl) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }
                float mad = 0;
                for (int i = 0; i < n; ++i)
                {
                    float diff = thisScale * Laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    float w = hasWeights ? weights[i] : x[i] * x[i];
                    mad += w * diff;
                }
                if (mad < bestMad)
                {
                    Laux[..n].CopyTo(L);
                    bestMad = mad;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>make_qp_quants: non-negative scales quantized to [0, nmax] with importance (K-quant super-block scales).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float MakeQpQuants(int n, int nmax, ReadOnlySpan<float> x, Span<byte> L, ReadOnlySpan<float> quantWeights)
    {
        float max = 0;
        for (int i = 0; i < n; ++i) max = Math.Max(max, x[i]);
        if (max < GroupMaxEps)
        {
            for (int i = 0; i < n; ++i) L[i] = 0;
            return 0f;
        }
        float iscale = nmax / max;
        for (int i = 0; i < n; ++i) L[i] = (byte)NearestInt(iscale * x[i]);
        float scale = 1 / iscale;
        float bestMse = 0;
        for (int i = 0; i < n; ++i)
        {
            float diff = x[i] - scale * L[i];
            float w = quantWeights[i];
            bestMse += w * diff * diff;
        }
        for (int step = -4; step <= 4; ++step)
        {
            if (step == 0) continue;
            float iscaleIs = (0.1f * step + nmax) / max;
            float scaleIs = 1 / iscaleIs;
            float mse = 0;
            for (int i = 0; i < n; ++i)
            {
                int l = NearestInt(iscaleIs * x[i]);
                l = Math.Min(nmax, l);
                float diff = x[i] - scaleIs * l;
                float w = quantWeights[i];
                mse += w * diff * diff;
            }
            if (mse < bestMse)
            {
                bestMse = mse;
                iscale = iscaleIs;
            }
        }
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; ++i)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Min(nmax, l);
            L[i] = (byte)l;
            float w = quantWeights[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int attempt = 0; attempt < 5; ++attempt)
        {
            int changed = 0;
            for (int i = 0; i < n; ++i)
            {
                float w = quantWeights[i];
                float slx = sumlx - w * x[i] * L[i];
                float sl2 = suml2 - w * L[i] * L[i];
                if (slx > 0 && sl2 > 0)
                {
                    int newL = NearestInt(x[i] * sl2 / slx);
                    newL = Math.Min(nmax, newL);
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (byte)newL;
                            sumlx = slx;
                            suml2 = sl2;
                            ++changed;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }

    /// <summary>Unpacks the 6-bit scale and min of sub-block j of a Q4_K/Q5_K block (get_scale_min_k4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GetScaleMinK4(int j, ReadOnlySpan<byte> q, out byte d, out byte m)
    {
        if (j < 4)
        {
            d = (byte)(q[j] & 63);
            m = (byte)(q[j + 4] & 63);
        }
        else
        {
            d = (byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            m = (byte)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
        }
    }

    /// <summary>Packs eight 6-bit scales and mins into 12 bytes (the K-quant layout).</summary>
    public static void PackScalesMins(ReadOnlySpan<byte> ls, ReadOnlySpan<byte> lm, Span<byte> scales)
    {
        for (int j = 0; j < 8; ++j)
        {
            if (j < 4)
            {
                scales[j] = ls[j];
                scales[j + 4] = lm[j];
            }
            else
            {
                scales[j + 4] = (byte)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
                scales[j - 4] |= (byte)((ls[j] >> 4) << 6);
                scales[j - 0] |= (byte)((lm[j] >> 4) << 6);
            }
        }
    }
}
