using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// Vectorised 32-value blocks of the legacy ggml types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 without importance).
/// Every per-element step of the reference is a single float32 multiply or add, a truncation or a round,
/// which a vector lane performs with the same rounding, and the only reductions are max/min of finite
/// values, which are exact in any order; so the bytes equal the scalar reference's. What vectors cannot
/// reproduce cheaply is left to the scalar code: each Try* returns false (and writes nothing) for a block
/// with NaN or infinity, a reciprocal scale that overflows (denormal blocks), or a Q4_1/Q5_1 block whose
/// minimum or maximum is a zero (whose sign depends on the scan order).
/// </summary>
internal static class BlockVectors
{
    public static bool IsAccelerated => Vector256.IsHardwareAccelerated;

    private const int AbsMask = 0x7fffffff, InfinityBits = 0x7f800000;

    /// <summary>Q8_0: d = amax/127, q = roundf(x/d) (half away from zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool TryQuantizeQ8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        if (!IsAccelerated) return false;
        var v = Load(x);
        int amaxBits = MaxAbsBits(v, out _);
        if (amaxBits >= InfinityBits) return false;
        float d = BitConverter.Int32BitsToSingle(amaxBits) / ((1 << 7) - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        if (!float.IsFinite(id)) return false;
        var scale = Vector256.Create(id);
        var q = NarrowToBytes(
            Vector256.ConvertToInt32(RoundHalfAwayFromZero(v.A * scale)), Vector256.ConvertToInt32(RoundHalfAwayFromZero(v.B * scale)),
            Vector256.ConvertToInt32(RoundHalfAwayFromZero(v.C * scale)), Vector256.ConvertToInt32(RoundHalfAwayFromZero(v.D * scale)));
        QuantMath.WriteHalf(y, d);
        q.CopyTo(y.Slice(2, 32));
        return true;
    }

    /// <summary>Q4_0 (levels 16, offset 8.5) and Q5_0 (levels 32, offset 16.5): d = max/-(levels/2), q = min(levels-1, trunc(x/d + offset)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool TryQuantizeSymmetric(ReadOnlySpan<float> x, Span<byte> y, int levels)
    {
        if (!IsAccelerated) return false;
        var v = Load(x);
        int amaxBits = MaxAbsBits(v, out var abs);
        if (amaxBits >= InfinityBits) return false;
        // The scale comes from the first value of largest magnitude, with its sign (ggml's `if (amax < fabsf(v))`).
        float max = amaxBits == 0 ? 0f : x[FirstIndexOf(abs, amaxBits)];
        float d = max / -(levels / 2);
        float id = d != 0 ? 1.0f / d : 0.0f;
        if (!float.IsFinite(id)) return false;
        var scale = Vector256.Create(id);
        var offset = Vector256.Create(levels / 2 + 0.5f);
        var top = Vector256.Create(levels - 1);
        var q = NarrowToBytes(
            Vector256.Min(Vector256.ConvertToInt32(v.A * scale + offset), top), Vector256.Min(Vector256.ConvertToInt32(v.B * scale + offset), top),
            Vector256.Min(Vector256.ConvertToInt32(v.C * scale + offset), top), Vector256.Min(Vector256.ConvertToInt32(v.D * scale + offset), top));
        QuantMath.WriteHalf(y, d);
        Pack(q, y[2..], levels);
        return true;
    }

    /// <summary>Q4_1 (levels 16, clamped to 15) and Q5_1 (levels 32, unclamped): d = (max-min)/(levels-1), m = min, q = trunc((x-min)/d + 0.5).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool TryQuantizeAsymmetric(ReadOnlySpan<float> x, Span<byte> y, int levels)
    {
        if (!IsAccelerated) return false;
        var v = Load(x);
        if (MaxAbsBits(v, out _) >= InfinityBits) return false;
        float min = HorizontalMin(Vector256.Min(Vector256.Min(v.A, v.B), Vector256.Min(v.C, v.D)));
        float max = HorizontalMax(Vector256.Max(Vector256.Max(v.A, v.B), Vector256.Max(v.C, v.D)));
        if (min == 0 || max == 0) return false;
        float d = (max - min) / (levels - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        if (!float.IsFinite(id)) return false;
        var scale = Vector256.Create(id);
        var vmin = Vector256.Create(min);
        var half = Vector256.Create(0.5f);
        // Q5_1 has no clamp in ggml (its values cannot exceed 31 anyway); an unreachable top keeps the operations identical.
        var top = Vector256.Create(levels == 16 ? 15 : int.MaxValue);
        var q = NarrowToBytes(
            Vector256.Min(Vector256.ConvertToInt32((v.A - vmin) * scale + half), top), Vector256.Min(Vector256.ConvertToInt32((v.B - vmin) * scale + half), top),
            Vector256.Min(Vector256.ConvertToInt32((v.C - vmin) * scale + half), top), Vector256.Min(Vector256.ConvertToInt32((v.D - vmin) * scale + half), top));
        QuantMath.WriteHalf(y, d);
        QuantMath.WriteHalf(y[2..], min);
        Pack(q, y[4..], levels);
        return true;
    }

    private readonly record struct Block(Vector256<float> A, Vector256<float> B, Vector256<float> C, Vector256<float> D);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Block Load(ReadOnlySpan<float> x)
    {
        if (x.Length < 32) throw new ArgumentException("a block is 32 values", nameof(x));
        ref float r = ref MemoryMarshal.GetReference(x);
        return new Block(Vector256.LoadUnsafe(ref r, 0), Vector256.LoadUnsafe(ref r, 8), Vector256.LoadUnsafe(ref r, 16), Vector256.LoadUnsafe(ref r, 24));
    }

    /// <summary>
    /// The bits of max |x| (compared as integers, which orders non-negative floats and puts NaN and infinity
    /// above every finite value), and the four |x| bit vectors for locating it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int MaxAbsBits(in Block v, out (Vector256<int> A, Vector256<int> B, Vector256<int> C, Vector256<int> D) abs)
    {
        var mask = Vector256.Create(AbsMask);
        abs = (v.A.AsInt32() & mask, v.B.AsInt32() & mask, v.C.AsInt32() & mask, v.D.AsInt32() & mask);
        var m = Vector256.Max(Vector256.Max(abs.A, abs.B), Vector256.Max(abs.C, abs.D));
        var m128 = Vector128.Max(m.GetLower(), m.GetUpper());
        return Math.Max(Math.Max(m128.GetElement(0), m128.GetElement(1)), Math.Max(m128.GetElement(2), m128.GetElement(3)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int FirstIndexOf((Vector256<int> A, Vector256<int> B, Vector256<int> C, Vector256<int> D) abs, int bits)
    {
        var target = Vector256.Create(bits);
        uint hits = Vector256.Equals(abs.A, target).ExtractMostSignificantBits()
            | Vector256.Equals(abs.B, target).ExtractMostSignificantBits() << 8
            | Vector256.Equals(abs.C, target).ExtractMostSignificantBits() << 16
            | Vector256.Equals(abs.D, target).ExtractMostSignificantBits() << 24;
        return BitOperations.TrailingZeroCount(hits);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMin(Vector256<float> m)
    {
        var h = Vector128.Min(m.GetLower(), m.GetUpper());
        return MathF.Min(MathF.Min(h.GetElement(0), h.GetElement(1)), MathF.Min(h.GetElement(2), h.GetElement(3)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMax(Vector256<float> m)
    {
        var h = Vector128.Max(m.GetLower(), m.GetUpper());
        return MathF.Max(MathF.Max(h.GetElement(0), h.GetElement(1)), MathF.Max(h.GetElement(2), h.GetElement(3)));
    }

    /// <summary>C's roundf: truncate, then step away from zero when the dropped fraction is at least a half (x - trunc(x) is exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> RoundHalfAwayFromZero(Vector256<float> x)
    {
        var t = Vector256.Truncate(x);
        var step = Vector256.ConditionalSelect(
            Vector256.GreaterThanOrEqual(Vector256.Abs(x - t), Vector256.Create(0.5f)),
            Vector256.CopySign(Vector256<float>.One, x), Vector256<float>.Zero);
        return t + step;
    }

    /// <summary>32 small integers (each within a byte) to 32 bytes, in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> NarrowToBytes(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d) =>
        Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, d)).AsByte();

    /// <summary>ggml's nibble layout (byte j = q[j] | q[j+16] &lt;&lt; 4); 32 levels also store bit 4 of q[j] in bit j of a leading u32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pack(Vector256<byte> q, Span<byte> destination, int levels)
    {
        var nibbles = Vector256.Create((byte)0x0F);
        var low = q & nibbles;
        var packed = low.GetLower() | (low.GetUpper() << 4);
        if (levels == 16)
        {
            packed.CopyTo(destination.Slice(0, 16));
            return;
        }
        uint high = (q << 3).ExtractMostSignificantBits();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(destination, high);
        packed.CopyTo(destination.Slice(4, 16));
    }
}
