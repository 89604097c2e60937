using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HymbaTools.Common.Numerics;

namespace HymbaTools.Quantization.BlockFormats;

/// <summary>F32, F16 (IEEE round-to-nearest-even) and BF16 (round-to-nearest-even, quiet NaN) as "block" formats of size 1.</summary>
internal sealed class FloatFormat(GgmlType type) : IBlockFormat
{
    public GgmlType Type { get; } = type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 ? type : throw new ArgumentOutOfRangeException(nameof(type));
    public int BlockSize => 1;
    public int BlockBytes => Type == GgmlType.F32 ? 4 : 2;
    public bool UsesImportance => false;
    public BlockGrid? Grid => null;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance)
    {
        BlockFormatGuard.Blocks(this, row.Length, destination.Length, importance);
        switch (Type)
        {
            case GgmlType.F32: MemoryMarshal.AsBytes(row).CopyTo(destination); break;
            case GgmlType.BF16: BFloat16Bits.FromSingle(row, MemoryMarshal.Cast<byte, ushort>(destination[..(row.Length * 2)])); break;
            default:
                var halves = MemoryMarshal.Cast<byte, Half>(destination[..(row.Length * 2)]);
                for (int i = 0; i < row.Length; i++) halves[i] = (Half)row[i];
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination)
    {
        BlockFormatGuard.BlocksFromBytes(this, source.Length, destination.Length);
        switch (Type)
        {
            case GgmlType.F32: source.CopyTo(MemoryMarshal.AsBytes(destination)); break;
            case GgmlType.BF16: BFloat16Bits.ToSingle(MemoryMarshal.Cast<byte, ushort>(source), destination); break;
            default: HalfBits.ToSingle(MemoryMarshal.Cast<byte, Half>(source), destination); break;
        }
    }
}
