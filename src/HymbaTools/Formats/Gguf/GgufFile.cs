using System.Diagnostics.CodeAnalysis;
using HymbaTools.Common;
using System.Text;
using HymbaTools.Quantization;

namespace HymbaTools.Formats.Gguf;

/// <summary>One tensor info of a GGUF file. Dimensions are in ggml order (ne[0] contiguous).</summary>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, GgmlType Type, long Offset, long ByteLength)
{
    public long ElementCount => Dimensions.Aggregate(1L, (a, b) => checked(a * b));
    /// <summary>Shape in row-major (PyTorch) order: the reverse of the ggml dimensions.</summary>
    public long[] Shape => Dimensions.Reverse().ToArray();
}

/// <summary>
/// A memory-mapped, fully validated GGUF v3 file. Every length and count is checked against the bytes
/// that remain and against <see cref="GgufReadLimits"/> before it is used; tensor infos are checked for
/// name length, rank, known type, rows that are whole blocks, sizes that do not overflow, alignment, and
/// offsets that are consecutive in tensor-info order and inside the file.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    private readonly MappedFile _map;
    private readonly byte* _base;
    private readonly Dictionary<string, GgufTensorInfo> _byName = new(StringComparer.Ordinal);

    private GgufFile(string path, MappedFile map)
    {
        Path = path;
        Length = map.Length;
        _map = map;
        _base = map.Base;
    }

    public string Path { get; }
    public long Length { get; }
    public uint Version { get; private set; }
    public uint Alignment { get; private set; } = GgufConstants.DefaultAlignment;
    public long DataStart { get; private set; }
    public IReadOnlyList<(string Key, GgufValue Value)> Metadata { get; private set; } = [];
    public IReadOnlyList<GgufTensorInfo> Tensors { get; private set; } = [];

    public bool TryGet(string key, [MaybeNullWhen(false)] out GgufValue value)
    {
        foreach (var (k, v) in Metadata) if (k == key) { value = v; return true; }
        value = null;
        return false;
    }

    public GgufValue Get(string key) => TryGet(key, out var v) ? v : throw new InvalidGgufException(Path, key, "metadata key is missing");

    public bool TryGetTensor(string name, [MaybeNullWhen(false)] out GgufTensorInfo info) => _byName.TryGetValue(name, out info);

    /// <summary>
    /// The bytes of one of this file's tensors. The info must be this file's own (a record made elsewhere, or
    /// one from another file, is refused), and the file must be open: the span can never reach outside the mapping.
    /// </summary>
    public ReadOnlySpan<byte> Data(GgufTensorInfo tensor)
    {
        _map.ThrowIfDisposed(Path);
        if (!_byName.TryGetValue(tensor.Name, out var own) || !ReferenceEquals(own, tensor))
            throw new ArgumentException($"{tensor.Name} is not a tensor of {Path}", nameof(tensor));
        long start = DataStart + tensor.Offset;
        if (tensor.Offset < 0 || tensor.ByteLength < 0 || start > Length - tensor.ByteLength)
            throw new InvalidGgufException(Path, tensor.Name, "tensor data outside the file");
        if (tensor.ByteLength > int.MaxValue) throw new InvalidGgufException(Path, tensor.Name, "tensor larger than 2 GiB cannot be read as one span");
        return new ReadOnlySpan<byte>(_base + start, (int)tensor.ByteLength);
    }

    /// <summary>Drops the file's pages from the process's resident set once a streaming pass is done with a tensor (see <see cref="MappedFile.ReleaseResidentPages"/>).</summary>
    public void ReleaseResidentPages() => _map.ReleaseResidentPages();

    /// <summary>True when the first bytes are the GGUF magic (cheap format detection).</summary>
    public static bool IsGguf(string path)
    {
        if (!File.Exists(path)) return false;
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        return f.Read(head) == 4 && BitConverter.ToUInt32(head) == GgufConstants.Magic;
    }

    public static GgufFile Open(string path, GgufReadLimits? limits = null)
    {
        limits ??= GgufReadLimits.Default;
        if (!File.Exists(path)) throw new InvalidGgufException(path, "", "file not found");
        long length = FileLength.Of(path);
        if (length < 24) throw new InvalidGgufException(path, "header", $"file is {length} bytes, shorter than a GGUF header (24 bytes)");
        MappedFile map;
        try { map = MappedFile.Open(path, length); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidGgufException(path, "", $"cannot read file ({e.Message})");
        }
        var file = new GgufFile(path, map);
        try
        {
            file.Parse(limits);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Forward-only cursor over the mapped bytes that never reads past the end.</summary>
    private ref struct Cursor(GgufFile file)
    {
        public long Position;

        private void Need(long bytes, string field)
        {
            if (bytes < 0 || Position > file.Length - bytes)
                throw new InvalidGgufException(file.Path, field, $"needs {bytes} bytes but the file ends at {file.Length} (truncated?)", Position);
        }

        public uint U32(string field) { Need(4, field); uint v = *(uint*)(file._base + Position); Position += 4; return v; }
        public ulong U64(string field) { Need(8, field); ulong v = *(ulong*)(file._base + Position); Position += 8; return v; }

        public ReadOnlySpan<byte> Bytes(long count, string field)
        {
            Need(count, field);
            var span = new ReadOnlySpan<byte>(file._base + Position, checked((int)count));
            Position += count;
            return span;
        }

        public long Remaining => file.Length - Position;

        public string String(string field, long maxBytes)
        {
            long at = Position;
            ulong length = U64(field);
            if (length > (ulong)maxBytes) throw new InvalidGgufException(file.Path, field, $"string length {length} exceeds the cap of {maxBytes} bytes", at);
            var bytes = Bytes((long)length, field);
            try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
            catch (DecoderFallbackException) { throw new InvalidGgufException(file.Path, field, "string is not valid UTF-8", at); }
        }
    }

    private void Parse(GgufReadLimits limits)
    {
        var c = new Cursor(this);
        uint magic = c.U32("magic");
        if (magic != GgufConstants.Magic) throw new InvalidGgufException(Path, "magic", $"0x{magic:X8} is not the GGUF magic (0x{GgufConstants.Magic:X8})", 0);
        Version = c.U32("version");
        if (Version != GgufConstants.Version)
            throw new InvalidGgufException(Path, "version", $"version {Version} is not supported (expected 3)", 4, unsupported: Version is 1 or 2);
        ulong tensorCount = c.U64("tensor_count");
        ulong kvCount = c.U64("metadata_kv_count");
        if (tensorCount > (ulong)limits.MaxTensors) throw new InvalidGgufException(Path, "tensor_count", $"{tensorCount} exceeds the cap of {limits.MaxTensors}", 8);
        if (kvCount > (ulong)limits.MaxMetadataEntries) throw new InvalidGgufException(Path, "metadata_kv_count", $"{kvCount} exceeds the cap of {limits.MaxMetadataEntries}", 16);
        // Each entry needs at least 12 bytes (key length + type), each tensor info at least 28: counts cannot exceed the file.
        if (kvCount * 12 > (ulong)c.Remaining) throw new InvalidGgufException(Path, "metadata_kv_count", $"{kvCount} entries cannot fit in the {c.Remaining} bytes left", 16);
        if (tensorCount * 28 > (ulong)c.Remaining) throw new InvalidGgufException(Path, "tensor_count", $"{tensorCount} tensor infos cannot fit in the {c.Remaining} bytes left", 8);

        var metadata = new List<(string, GgufValue)>((int)kvCount);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            long at = c.Position;
            string key = c.String($"metadata[{i}].key", GgufConstants.MaxKeyBytes);
            if (!keys.Add(key)) throw new InvalidGgufException(Path, key, "duplicate metadata key", at);
            uint type = c.U32(key);
            var value = ReadValue(ref c, key, type, limits, 0);
            metadata.Add((key, value));
        }
        Metadata = metadata;

        if (TryGet(GgufConstants.AlignmentKey, out var alignment))
        {
            if (alignment.Type != GgufValueType.UInt32) throw new InvalidGgufException(Path, GgufConstants.AlignmentKey, $"is a {alignment.Type}, expected UINT32");
            uint a = (uint)alignment.AsInteger;
            if (a == 0 || (a & (a - 1)) != 0) throw new InvalidGgufException(Path, GgufConstants.AlignmentKey, $"{a} is not a non-zero power of two");
            Alignment = a;
        }

        var infos = new List<GgufTensorInfo>((int)tensorCount);
        for (ulong i = 0; i < tensorCount; i++)
        {
            long at = c.Position;
            string name = c.String($"tensor[{i}].name", 1 << 16);
            if (Encoding.UTF8.GetByteCount(name) > GgufConstants.MaxTensorNameBytes)
                throw new InvalidGgufException(Path, name, $"tensor name is {Encoding.UTF8.GetByteCount(name)} bytes, more than {GgufConstants.MaxTensorNameBytes}", at);
            if (_byName.ContainsKey(name)) throw new InvalidGgufException(Path, name, "duplicate tensor name", at);
            uint dims = c.U32(name);
            if (dims is 0 or > GgufConstants.MaxDimensions) throw new InvalidGgufException(Path, name, $"{dims} dimensions (expected 1..{GgufConstants.MaxDimensions})", at);
            var shape = new long[dims];
            for (int d = 0; d < dims; d++)
            {
                ulong ne = c.U64(name);
                if (ne == 0 || ne > long.MaxValue) throw new InvalidGgufException(Path, name, $"dimension {d} is {ne} (expected 1..2^63-1)", c.Position - 8);
                shape[d] = (long)ne;
            }
            uint typeId = c.U32(name);
            if (!GgmlTypes.IsKnown(typeId)) throw new InvalidGgufException(Path, name, $"unknown ggml type {typeId}", c.Position - 4);
            var type = (GgmlType)typeId;
            ulong offset = c.U64(name);
            long bytes;
            try
            {
                long rows = 1;
                for (int d = 1; d < shape.Length; d++) rows = checked(rows * shape[d]);
                if (!GgmlTypes.FitsRow(type, shape[0]))
                    throw new InvalidGgufException(Path, name, $"ne[0] = {shape[0]} is not a multiple of the {GgmlTypes.NameOf(type)} block size {GgmlTypes.Of(type).BlockSize}", at);
                bytes = checked(GgmlTypes.RowBytes(type, shape[0]) * rows);
            }
            catch (OverflowException) { throw new InvalidGgufException(Path, name, $"shape [{string.Join(", ", shape)}] overflows 64-bit size", at); }
            if (offset % Alignment != 0) throw new InvalidGgufException(Path, name, $"data offset {offset} is not a multiple of the alignment {Alignment}", c.Position - 8);
            var info = new GgufTensorInfo(name, shape, type, (long)Math.Min(offset, long.MaxValue), bytes);
            infos.Add(info);
            _byName.Add(name, info);
        }
        DataStart = GgufConstants.Pad(c.Position, Alignment);

        long expected = 0;
        foreach (var t in infos)
        {
            if (t.Offset != expected)
                throw new InvalidGgufException(Path, t.Name, $"data offset {t.Offset}, expected {expected} (offsets must be consecutive in tensor-info order)");
            if (t.Offset > Length - DataStart - t.ByteLength)
                throw new InvalidGgufException(Path, t.Name, $"data [{t.Offset}, {t.Offset + t.ByteLength}) extends past the end of the file ({Length - DataStart} data bytes; truncated?)");
            expected = GgufConstants.Pad(t.Offset + t.ByteLength, Alignment);
        }
        // ggml reads the data section as the sum of padded tensor sizes, so the last tensor's padding must be there too.
        if (DataStart + expected > Length)
            throw new InvalidGgufException(Path, infos.Count > 0 ? infos[^1].Name : "data", $"data section needs {expected} bytes but the file has {Length - DataStart} after the header (truncated?)");
        Tensors = infos;
    }

    private GgufValue ReadValue(ref Cursor c, string key, uint type, GgufReadLimits limits, int depth)
    {
        if (!GgufConstants.IsKnown(type)) throw new InvalidGgufException(Path, key, $"unknown value type {type}", c.Position - 4);
        var t = (GgufValueType)type;
        switch (t)
        {
            case GgufValueType.UInt8: return GgufValue.U8(c.Bytes(1, key)[0]);
            case GgufValueType.Int8: return GgufValue.I8((sbyte)c.Bytes(1, key)[0]);
            case GgufValueType.UInt16: return GgufValue.U16(BitConverter.ToUInt16(c.Bytes(2, key)));
            case GgufValueType.Int16: return GgufValue.I16(BitConverter.ToInt16(c.Bytes(2, key)));
            case GgufValueType.UInt32: return GgufValue.U32(c.U32(key));
            case GgufValueType.Int32: return GgufValue.I32((int)c.U32(key));
            case GgufValueType.Float32: return GgufValue.F32(BitConverter.UInt32BitsToSingle(c.U32(key)));
            case GgufValueType.UInt64: return GgufValue.U64(c.U64(key));
            case GgufValueType.Int64: return GgufValue.I64((long)c.U64(key));
            case GgufValueType.Float64: return GgufValue.F64(BitConverter.UInt64BitsToDouble(c.U64(key)));
            case GgufValueType.Bool:
                byte b = c.Bytes(1, key)[0];
                if (b > 1) throw new InvalidGgufException(Path, key, $"bool value {b} (expected 0 or 1)", c.Position - 1);
                return GgufValue.Bool(b == 1);
            case GgufValueType.String: return GgufValue.Str(c.String(key, limits.MaxStringBytes));
            default:
                if (depth >= limits.MaxArrayNesting) throw new InvalidGgufException(Path, key, $"arrays nested deeper than {limits.MaxArrayNesting}", c.Position);
                long at = c.Position;
                uint elementType = c.U32(key);
                if (!GgufConstants.IsKnown(elementType)) throw new InvalidGgufException(Path, key, $"unknown array element type {elementType}", at);
                ulong count = c.U64(key);
                int minSize = GgufConstants.ScalarSize((GgufValueType)elementType) switch { 0 => 8, var s => s };
                if (count > (ulong)limits.MaxArrayElements || count * (ulong)minSize > (ulong)c.Remaining)
                    throw new InvalidGgufException(Path, key, $"array of {count} elements cannot fit in the {c.Remaining} bytes left", at + 4);
                var elements = new List<GgufValue>((int)count);
                for (ulong i = 0; i < count; i++) elements.Add(ReadValue(ref c, key, elementType, limits, depth + 1));
                return GgufValue.Array((GgufValueType)elementType, elements);
        }
    }

    public void Dispose() => _map.Dispose();
}
