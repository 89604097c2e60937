namespace HymbaTools.Quantization.Onnx;

/// <summary>A weight [N, K] as int8 with one float scale per output channel (row); zero point 0.</summary>
internal sealed record Int8PerChannelWeight(int N, int K, sbyte[] Values, float[] Scales);

/// <summary>
/// Symmetric int8 per output channel, the ONNX DequantizeLinear(axis=0) form: scale = max|row| / 127,
/// q = round-half-even(x / scale) clamped to [-127, 127] (symmetric range, so -128 is never used).
/// </summary>
internal static class Int8PerChannel
{
    public static Int8PerChannelWeight Quantize(ReadOnlySpan<float> weight, int n, int k)
    {
        if (weight.Length != (long)n * k) throw new ArgumentException($"weight has {weight.Length} values, expected {n} x {k}");
        var values = new sbyte[(long)n * k];
        var scales = new float[n];
        for (int row = 0; row < n; row++)
        {
            var w = weight.Slice(row * k, k);
            float amax = 0;
            foreach (float v in w) amax = MathF.Max(amax, MathF.Abs(v));
            float scale = amax / 127f;
            scales[row] = scale;
            float reciprocal = scale != 0 ? 1f / scale : 0f;
            for (int j = 0; j < k; j++)
                values[(long)row * k + j] = (sbyte)Math.Clamp((int)MathF.Round(w[j] * reciprocal, MidpointRounding.ToEven), -127, 127);
        }
        return new Int8PerChannelWeight(n, k, values, scales);
    }

    public static float[] Dequantize(Int8PerChannelWeight w)
    {
        var result = new float[(long)w.N * w.K];
        for (int row = 0; row < w.N; row++)
            for (int j = 0; j < w.K; j++) result[(long)row * w.K + j] = w.Values[(long)row * w.K + j] * w.Scales[row];
        return result;
    }
}
