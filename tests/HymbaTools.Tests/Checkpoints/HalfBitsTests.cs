using HymbaTools.Common.Numerics;

namespace HymbaTools.Tests.Checkpoints;

public class HalfBitsTests
{
    /// <summary>Every one of the 65,536 float16 bit patterns widens to the same float32 bits as System.Half's conversion.</summary>
    [Fact]
    public void Every_half_widens_exactly_as_system_half()
    {
        var halves = Enumerable.Range(0, 65536).Select(b => BitConverter.UInt16BitsToHalf((ushort)b)).ToArray();
        var actual = new float[halves.Length + 3];
        HalfBits.ToSingle(halves, actual);
        for (int b = 0; b < halves.Length; b++)
        {
            uint expected = BitConverter.SingleToUInt32Bits((float)halves[b]);
            Assert.True(expected == BitConverter.SingleToUInt32Bits(actual[b]), $"half 0x{b:x4}: expected 0x{expected:x8}, got 0x{BitConverter.SingleToUInt32Bits(actual[b]):x8}");
        }
    }
}
