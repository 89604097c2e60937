using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HymbaTools.Common.Numerics;

namespace HymbaTools.Checkpoints;

/// <summary>
/// One tensor of a safetensors file: its name, dtype, shape and a zero-copy view of its bytes in the
/// memory-mapped file. Valid while the owning <see cref="SafetensorsFile"/> is open.
/// </summary>
public sealed class TensorView
{
    private readonly SafetensorsFile _file;

    internal TensorView(SafetensorsFile file, string name, SafetensorsDType dtype, long[] shape, long dataOffset, long byteLength)
    {
        _file = file;
        Name = name;
        DType = dtype;
        Shape = shape;
        DataOffset = dataOffset;
        ByteLength = byteLength;
    }

    public string Name { get; }
    public SafetensorsDType DType { get; }
    public IReadOnlyList<long> Shape { get; }
    /// <summary>Offset of the first byte in the file (not in the data section).</summary>
    public long DataOffset { get; }
    public long ByteLength { get; }
    public string FilePath => _file.Path;

    public long ElementCount => ShapeMath.ElementCount(Shape);

    public int Rank => Shape.Count;

    /// <summary>
    /// Tells the mapping that a streaming pass is done with this tensor: the pages of its file stop counting toward
    /// the process's memory (all of them, see <see cref="Common.MappedFile.ReleaseResidentPages"/>); reading again
    /// afterwards is still correct (the pages come back from the page cache).
    /// </summary>
    public void ReleaseResidentPages() => _file.ReleaseResidentPages();

    /// <summary>The raw little-endian bytes, straight from the mapping.</summary>
    public ReadOnlySpan<byte> Bytes => _file.GetSpan(DataOffset, ByteLength, Name);

    /// <summary>Widens the tensor (F32, F16 or BF16) into <paramref name="destination"/>; bf16 is upcast exactly.</summary>
    public void CopyToFloat32(Span<float> destination) => CopyRowsToFloat32(0, RowCount, destination);

    public float[] ToFloat32Array()
    {
        var result = new float[checked((int)ElementCount)];
        CopyToFloat32(result);
        return result;
    }

    /// <summary>Number of rows when the tensor is seen as [Shape[0], rest] (1 for a scalar).</summary>
    public long RowCount => Shape.Count == 0 ? 1 : Shape[0];

    /// <summary>Elements per row when the tensor is seen as [Shape[0], rest].</summary>
    public long RowLength => Shape.Count == 0 ? 1 : ShapeMath.ElementCount(Shape.Skip(1).ToArray());

    /// <summary>Widens rows [firstRow, firstRow+rowCount) into destination; lets callers stream large tensors.</summary>
    public void CopyRowsToFloat32(long firstRow, long rowCount, Span<float> destination)
    {
        if (firstRow < 0 || rowCount < 0 || firstRow + rowCount > RowCount) throw new ArgumentOutOfRangeException(nameof(rowCount));
        CopyElementsToFloat32(checked(firstRow * RowLength), checked(rowCount * RowLength), destination);
    }

    /// <summary>Widens elements [first, first+count) (row-major order) into destination.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void CopyElementsToFloat32(long first, long count, Span<float> destination)
    {
        if (first < 0 || count < 0 || first + count > ElementCount) throw new ArgumentOutOfRangeException(nameof(count));
        if (destination.Length < count) throw new ArgumentException("destination too short", nameof(destination));
        int elementSize = SafetensorsDTypes.SizeOf(DType);
        var bytes = _file.GetSpan(checked(DataOffset + first * elementSize), checked(count * elementSize), Name);
        var dst = destination[..(int)count];
        switch (DType)
        {
            case SafetensorsDType.F32:
                bytes.CopyTo(MemoryMarshal.AsBytes(dst));
                break;
            case SafetensorsDType.BF16:
                BFloat16Bits.ToSingle(MemoryMarshal.Cast<byte, ushort>(bytes), dst);
                break;
            case SafetensorsDType.F16:
                HalfBits.ToSingle(MemoryMarshal.Cast<byte, Half>(bytes), dst);
                break;
            default:
                throw new InvalidOperationException($"{Name}: dtype {SafetensorsDTypes.NameOf(DType)} is not a float type");
        }
    }

    /// <summary>Reads an I64 tensor (golden input ids).</summary>
    public long[] ToInt64Array()
    {
        if (DType != SafetensorsDType.I64) throw new InvalidOperationException($"{Name}: dtype {SafetensorsDTypes.NameOf(DType)} is not I64");
        return MemoryMarshal.Cast<byte, long>(Bytes).ToArray();
    }

    public override string ToString() => $"{Name} {SafetensorsDTypes.NameOf(DType)}[{string.Join(", ", Shape)}]";
}

internal static class ShapeMath
{
    /// <summary>Product of the dims in checked arithmetic (a header cannot make it wrap).</summary>
    public static long ElementCount(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (long d in shape) n = checked(n * d);
        return n;
    }

    public static string Format(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}
