using HymbaTools.Quantization;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Tests.Quantization;

/// <summary>Blocks whose bytes follow by hand from the documented rules (the rules of ggml's quantize_row_*_ref in ggml-quants.c).</summary>
public class BlockFormatKnownAnswerTests
{
    private static byte[] Quantize(GgmlType type, float[] x) => TensorQuantizer.Quantize(type, x, x.Length);

    private static ushort Half(float v) => BitConverter.HalfToUInt16Bits((Half)v);

    [Fact]
    public void Q8_0_rounds_half_away_from_zero()
    {
        // amax = 127 -> d = 1, id = 1: q = roundf(x). 0.5 -> 1, -0.5 -> -1, 2.5 -> 3, -2.5 -> -3 (not to even).
        var x = new float[32];
        x[0] = 127; x[1] = 0.5f; x[2] = -0.5f; x[3] = 2.5f; x[4] = -2.5f; x[5] = 1.49f;
        var y = Quantize(GgmlType.Q8_0, x);
        Assert.Equal(Half(1f), BitConverter.ToUInt16(y, 0));
        Assert.Equal(new sbyte[] { 127, 1, -1, 3, -3, 1, 0 }, y.Skip(2).Take(7).Select(b => (sbyte)b));
    }

    [Fact]
    public void Q4_0_takes_the_first_signed_max_and_truncates_after_adding_8_5()
    {
        // Largest magnitude 8 appears as -8 first, then +8: max = -8 -> d = 1, id = 1.
        // q = min(15, trunc(x + 8.5)): -8 -> 0, +8 -> 15 (16.5 clamped), 0.5 -> 9, -0.5 -> 8, 0 -> 8.
        var x = new float[32];
        x[0] = -8; x[1] = 8; x[2] = 0.5f; x[3] = -0.5f; x[16] = 3; x[17] = -3;
        var y = Quantize(GgmlType.Q4_0, x);
        Assert.Equal(Half(1f), BitConverter.ToUInt16(y, 0));
        Assert.Equal(0 | (11 << 4), y[2]);   // element 0 (q 0) and element 16 (3 + 8.5 -> 11)
        Assert.Equal(15 | (5 << 4), y[3]);   // element 1 (q 15) and element 17 (-3 + 8.5 -> 5)
        Assert.Equal(9 | (8 << 4), y[4]);    // element 2 (0.5 -> 9), element 18 (0 -> 8)
        Assert.Equal(8 | (8 << 4), y[5]);    // element 3 (-0.5 -> 8.0 -> 8)
        // With +8 first the scale flips sign: d = -1.
        x[0] = 8; x[1] = -8;
        Assert.Equal(Half(-1f), BitConverter.ToUInt16(Quantize(GgmlType.Q4_0, x), 0));
    }

    [Fact]
    public void Q4_1_stores_min_and_range_over_15()
    {
        var x = Enumerable.Range(0, 32).Select(i => (float)(i % 16)).ToArray(); // min 0, max 15 -> d = 1
        var y = Quantize(GgmlType.Q4_1, x);
        Assert.Equal(Half(1f), BitConverter.ToUInt16(y, 0));
        Assert.Equal(Half(0f), BitConverter.ToUInt16(y, 2));
        for (int j = 0; j < 16; j++) Assert.Equal((byte)(j | (j << 4)), y[4 + j]);
    }

    [Fact]
    public void Q5_0_puts_the_fifth_bit_in_qh()
    {
        // max = -16 -> d = 1: q = min(31, trunc(x + 16.5)). x[0] = -16 -> 0, x[1] = 15 -> 31 (bit 4 set), x[16] = 0 -> 16 (bit 4 set).
        var x = new float[32];
        x[0] = -16; x[1] = 15;
        var y = Quantize(GgmlType.Q5_0, x);
        Assert.Equal(Half(1f), BitConverter.ToUInt16(y, 0));
        uint qh = BitConverter.ToUInt32(y, 2);
        Assert.Equal(0u, qh & 1);                 // element 0: q = 0
        Assert.Equal(1u, (qh >> 1) & 1);          // element 1: q = 31
        Assert.Equal(1u, (qh >> 16) & 1);         // element 16: q = 16
        Assert.Equal((byte)(0 | (0 << 4)), y[6]); // low nibbles of elements 0 and 16
        Assert.Equal((byte)(15 | (0 << 4)), y[7]);
    }

    [Fact]
    public void Q5_1_uses_31_levels_without_clamp()
    {
        var x = Enumerable.Range(0, 32).Select(i => (float)i).ToArray(); // min 0, max 31 -> d = 1
        var y = Quantize(GgmlType.Q5_1, x);
        Assert.Equal(Half(1f), BitConverter.ToUInt16(y, 0));
        Assert.Equal(0xFFFF0000u, BitConverter.ToUInt32(y, 4)); // elements 16..31 have bit 4 set
    }

    [Theory]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q8_0)]
    public void All_zero_blocks_encode_to_zero_scales_and_decode_to_zero(GgmlType type)
    {
        int n = GgmlTypes.Of(type).BlockSize;
        var y = Quantize(type, new float[n]);
        var back = TensorQuantizer.Dequantize(type, y, n);
        Assert.All(back, v => Assert.Equal(0f, v));
        if (type == GgmlType.Q6_K) Assert.All(y, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Rows_that_are_not_whole_blocks_are_refused()
    {
        Assert.Throws<ArgumentException>(() => TensorQuantizer.Quantize(GgmlType.Q4_0, new float[48], 48));
        Assert.Throws<ArgumentException>(() => TensorQuantizer.Quantize(GgmlType.Q4_K, new float[1600], 1600));
    }

    [Fact]
    public void Nearest_int_rounds_half_to_even()
    {
        Assert.Equal(2, QuantMath.NearestInt(2.5f));
        Assert.Equal(4, QuantMath.NearestInt(3.5f));
        Assert.Equal(-2, QuantMath.NearestInt(-2.5f));
        Assert.Equal(0, QuantMath.NearestInt(0.49999997f));
    }
}
