using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.InteropServices;

namespace HymbaTools.Checkpoints;

/// <summary>Counts NaN/Inf values in a float tensor straight from its raw bits (exponent all ones).</summary>
internal static class NonFiniteScanner
{
    public static long Count(TensorView tensor)
    {
        var bytes = tensor.Bytes;
        return tensor.DType switch
        {
            SafetensorsDType.F32 => Count(MemoryMarshal.Cast<byte, uint>(bytes), 0x7f800000u),
            SafetensorsDType.BF16 => Count(MemoryMarshal.Cast<byte, ushort>(bytes), (ushort)0x7f80),
            SafetensorsDType.F16 => Count(MemoryMarshal.Cast<byte, ushort>(bytes), (ushort)0x7c00),
            _ => 0,
        };
    }

    /// <summary>
    /// Values whose <paramref name="exponent"/> bits are all set. Whole vectors are tested at once and only a vector
    /// holding such a value is counted lane by lane, so the common all-finite tensor is one pass at memory speed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static long Count<T>(ReadOnlySpan<T> values, T exponent) where T : unmanaged, IBinaryInteger<T>
    {
        long bad = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var mask = new Vector<T>(exponent);
            var vectors = MemoryMarshal.Cast<T, Vector<T>>(values);
            foreach (var v in vectors)
            {
                if (Vector.EqualsAny(v & mask, mask))
                    for (int lane = 0; lane < Vector<T>.Count; lane++) if ((v[lane] & exponent) == exponent) bad++;
            }
            i = vectors.Length * Vector<T>.Count;
        }
        for (; i < values.Length; i++) if ((values[i] & exponent) == exponent) bad++;
        return bad;
    }
}
