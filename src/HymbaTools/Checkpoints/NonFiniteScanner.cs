using System.Runtime.InteropServices;

namespace HymbaTools.Checkpoints;

/// <summary>Counts NaN/Inf values in a float tensor straight from its raw bits (exponent all ones).</summary>
internal static class NonFiniteScanner
{
    public static long Count(TensorView tensor)
    {
        var bytes = tensor.Bytes;
        long bad = 0;
        switch (tensor.DType)
        {
            case SafetensorsDType.F32:
                foreach (uint u in MemoryMarshal.Cast<byte, uint>(bytes)) if ((u & 0x7f800000u) == 0x7f800000u) bad++;
                break;
            case SafetensorsDType.BF16:
                foreach (ushort u in MemoryMarshal.Cast<byte, ushort>(bytes)) if ((u & 0x7f80) == 0x7f80) bad++;
                break;
            case SafetensorsDType.F16:
                foreach (ushort u in MemoryMarshal.Cast<byte, ushort>(bytes)) if ((u & 0x7c00) == 0x7c00) bad++;
                break;
        }
        return bad;
    }
}
