using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace HymbaTools.Common.Numerics;

/// <summary>
/// bfloat16 &lt;-&gt; float32 on raw bits (.NET has System.Half but no BFloat16).
/// Rounding to bf16 is round-to-nearest-even with NaN kept quiet, the same rule as PyTorch,
/// gguf-py and ggml's <c>ggml_compute_fp32_to_bf16</c>, so files we write match theirs byte for byte.
/// </summary>
internal static class BFloat16Bits
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40); // NaN: keep quiet
        u += 0x7fffu + ((u >> 16) & 1u);
        return (ushort)(u >> 16);
    }

    /// <summary>Widens bf16 to f32: a 16-bit shift, vectorised.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination too short", nameof(destination));
        int i = 0;
        var dst = MemoryMarshal.Cast<float, uint>(destination);
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + Vector256<ushort>.Count <= source.Length; i += Vector256<ushort>.Count)
            {
                var v = Vector256.Create(source.Slice(i, Vector256<ushort>.Count));
                var (lo, hi) = Vector256.Widen(v);
                (lo << 16).CopyTo(dst.Slice(i));
                (hi << 16).CopyTo(dst.Slice(i + Vector256<uint>.Count));
            }
        }
        for (; i < source.Length; i++) destination[i] = ToSingle(source[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FromSingle(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination too short", nameof(destination));
        for (int i = 0; i < source.Length; i++) destination[i] = FromSingle(source[i]);
    }
}
