using HymbaTools.Quantization;

namespace HymbaTools.Tests.Quantization;

/// <summary>dequantize(quantize(x)) stays within each codec's error bound, per block.</summary>
public class RoundTripErrorTests
{
    /// <summary>
    /// Bound on |x - x'| relative to the block's max |x|: half a grid step, or for the symmetric types (scale
    /// max/-2^(b-1)) a full step on the side opposite the max, which the grid reaches only to (2^(b-1)-1)/2^(b-1);
    /// plus slack for fp16 scales.
    /// </summary>
    public static IEnumerable<object[]> Bounds() =>
    [
        [GgmlType.Q8_0, 0.5 / 127 + 1e-3], [GgmlType.Q4_0, 1.0 / 8 + 0.01], [GgmlType.Q4_1, 1.0 / 15 + 0.01],
        [GgmlType.Q5_0, 1.0 / 16 + 0.01], [GgmlType.Q5_1, 1.0 / 31 + 0.01], [GgmlType.Q4_K, 0.12], [GgmlType.Q5_K, 0.06],
        [GgmlType.Q6_K, 0.04], [GgmlType.F16, 1e-3], [GgmlType.BF16, 8e-3],
        // IQ4_NL's levels -127..113 have gaps up to 24 (half: 12 of 127), and the least-squares scale may leave the
        // block's extreme past the last level: measured worst 0.083 of max|x| on these blocks.
        [GgmlType.IQ4_NL, 0.11],
    ];

    [Theory]
    [MemberData(nameof(Bounds))]
    public void Error_is_bounded_by_the_grid_step(GgmlType type, double bound)
    {
        var rng = new Random(11);
        int n = 1024;
        var x = Enumerable.Range(0, n * 8).Select(_ => (float)(rng.NextDouble() * 2 - 1) * (float)Math.Pow(10, rng.Next(-3, 3))).ToArray();
        var back = TensorQuantizer.Dequantize(type, TensorQuantizer.Quantize(type, x, n), x.Length);
        int block = Math.Max(32, GgmlTypes.Of(type).BlockSize);
        for (int b = 0; b < x.Length / block; b++)
        {
            double amax = 0, err = 0;
            for (int j = 0; j < block; j++)
            {
                amax = Math.Max(amax, Math.Abs(x[b * block + j]));
                err = Math.Max(err, Math.Abs(x[b * block + j] - back[b * block + j]));
            }
            Assert.True(err <= bound * amax + 1e-12, $"{type} block {b}: error {err:E3} > {bound} x {amax:E3}");
        }
    }
}
