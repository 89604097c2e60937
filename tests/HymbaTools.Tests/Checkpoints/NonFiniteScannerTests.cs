using HymbaTools.Checkpoints;

namespace HymbaTools.Tests.Checkpoints;

/// <summary>The vectorised NaN/Inf count equals a plain count, wherever the bad values sit (whole vectors, the tail).</summary>
public class NonFiniteScannerTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1000)]
    [InlineData(4099)]
    public void Counts_match_a_scalar_count_for_every_dtype(int length)
    {
        var random = new Random(length);
        var f32 = new float[length];
        var half = new Half[length];
        var bf16 = new ushort[length];
        for (int i = 0; i < length; i++) { f32[i] = (float)random.NextDouble() * 4 - 2; half[i] = (Half)f32[i]; }
        // Bad values at the start, the end, in one vector twice and scattered.
        foreach (int at in new[] { 0, length - 1, length / 2, length / 2 + 1, length / 3 }.Where(p => p >= 0 && p < length).Distinct())
        {
            f32[at] = (at % 3) switch { 0 => float.NaN, 1 => float.PositiveInfinity, _ => float.NegativeInfinity };
            half[at] = (Half)f32[at];
        }
        for (int i = 0; i < length; i++) bf16[i] = (ushort)(BitConverter.SingleToUInt32Bits(f32[i]) >> 16);

        long expected = f32.LongCount(v => !float.IsFinite(v));
        Assert.Equal(expected, NonFiniteScanner.Count<uint>(f32.Select(BitConverter.SingleToUInt32Bits).ToArray(), 0x7f800000u));
        Assert.Equal(expected, NonFiniteScanner.Count<ushort>(half.Select(BitConverter.HalfToUInt16Bits).ToArray(), (ushort)0x7c00));
        Assert.Equal(expected, NonFiniteScanner.Count<ushort>(bf16, (ushort)0x7f80));
        Assert.True(length < 5 || expected >= 4, "the test must plant bad values");
    }
}
