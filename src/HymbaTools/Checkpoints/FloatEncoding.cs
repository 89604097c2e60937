using System.Runtime.InteropServices;
using HymbaTools.Common.Numerics;

namespace HymbaTools.Checkpoints;

/// <summary>float32 values to the bytes of a safetensors float dtype (bf16 and f16 round to nearest even).</summary>
internal static class FloatEncoding
{
    public static void Encode(ReadOnlySpan<float> values, Span<byte> destination, SafetensorsDType dtype)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32: MemoryMarshal.AsBytes(values).CopyTo(destination); break;
            case SafetensorsDType.BF16: BFloat16Bits.FromSingle(values, MemoryMarshal.Cast<byte, ushort>(destination)); break;
            case SafetensorsDType.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(destination);
                for (int i = 0; i < values.Length; i++) halves[i] = (Half)values[i];
                break;
            default: throw new ArgumentOutOfRangeException(nameof(dtype), $"{dtype} is not a float dtype");
        }
    }
}
