using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using HymbaTools.Common;

namespace HymbaTools.Checkpoints;

/// <summary>
/// A memory-mapped safetensors file. Opening validates the whole header before anything is exposed:
/// length prefix against the file size and the cap, JSON shape, dtypes, ranks, and that the
/// data_offsets of all tensors lie inside the data section, match shape x dtype, do not overlap and
/// leave no holes (as the reference implementation requires). No allocation depends on an unchecked
/// size field: the header is read only after its length has been checked against the file size.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MappedFile _map;
    private readonly byte* _base;
    private readonly Dictionary<string, TensorView> _tensors;

    private SafetensorsFile(string path, MappedFile map)
    {
        Path = path;
        Length = map.Length;
        _map = map;
        _base = map.Base;
        _tensors = new Dictionary<string, TensorView>(StringComparer.Ordinal);
    }

    public string Path { get; }
    public long Length { get; }
    /// <summary>Header "__metadata__" entries (string to string), empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; private set; } = new Dictionary<string, string>();
    /// <summary>Tensors in header order of their data offsets.</summary>
    public IReadOnlyList<TensorView> Tensors { get; private set; } = [];
    public long DataSectionStart { get; private set; }

    public bool TryGetTensor(string name, [MaybeNullWhen(false)] out TensorView tensor) => _tensors.TryGetValue(name, out tensor);

    public static SafetensorsFile Open(string path, SafetensorsLimits? limits = null)
    {
        limits ??= SafetensorsLimits.Default;
        if (!File.Exists(path)) throw new InvalidCheckpointException(path, "", "file not found");
        long length = FileLength.Of(path);
        if (length < SafetensorsLimits.LengthPrefixBytes)
            throw new InvalidCheckpointException(path, "header", $"file is {length} bytes, shorter than the 8-byte header length prefix (truncated file?)");

        MappedFile map;
        try { map = MappedFile.Open(path, length); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidCheckpointException(path, "", $"cannot read file ({e.Message})", inner: e);
        }
        var file = new SafetensorsFile(path, map);
        try
        {
            file.ParseHeader(limits);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Lets the kernel drop the file's pages from the process's resident set (see <see cref="MappedFile.ReleaseResidentPages"/>).</summary>
    internal void ReleaseResidentPages() => _map.ReleaseResidentPages();

    internal ReadOnlySpan<byte> GetSpan(long offset, long length, string what)
    {
        _map.ThrowIfDisposed(Path);
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new InvalidOperationException($"{Path}: {what}: range {offset}+{length} outside the file");
        if (length > int.MaxValue)
            throw new InvalidCheckpointException(Path, what, $"{length} bytes in one tensor exceeds the 2 GiB a single span can address");
        return new ReadOnlySpan<byte>(_base + offset, (int)length);
    }

    private void ParseHeader(SafetensorsLimits limits)
    {
        ulong headerLength = *(ulong*)_base; // little-endian on every platform .NET runs this on (x64/arm64)
        if (!BitConverter.IsLittleEndian) headerLength = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(headerLength);
        if (headerLength > (ulong)limits.MaxHeaderBytes)
            throw new InvalidCheckpointException(Path, "header", $"header length {headerLength} exceeds the {limits.MaxHeaderBytes}-byte cap (corrupt length prefix?)");
        if (headerLength > (ulong)(Length - SafetensorsLimits.LengthPrefixBytes))
            throw new InvalidCheckpointException(Path, "header", $"header length {headerLength} is larger than the {Length - SafetensorsLimits.LengthPrefixBytes} bytes after the prefix (truncated file?)");
        if (headerLength < 2)
            throw new InvalidCheckpointException(Path, "header", $"header length {headerLength} is too small for a JSON object");

        DataSectionStart = SafetensorsLimits.LengthPrefixBytes + (long)headerLength;
        long dataLength = Length - DataSectionStart;
        var headerBytes = GetSpan(SafetensorsLimits.LengthPrefixBytes, (long)headerLength, "header");

        var doc = JsonInput.Document(headerBytes.ToArray(), 16, problem => new InvalidCheckpointException(Path, "header", "header is " + problem));

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidCheckpointException(Path, "header", $"header is a JSON {doc.RootElement.ValueKind}, expected an object of tensors");

            var seen = new HashSet<string>(StringComparer.Ordinal);
            var entries = new List<(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)>();
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new InvalidCheckpointException(Path, property.Name, "tensor name appears twice in the header");
                if (property.Name == "__metadata__")
                {
                    Metadata = ParseMetadata(property.Value);
                    continue;
                }
                entries.Add(ParseEntry(property.Name, property.Value, limits, dataLength));
            }

            // data_offsets must tile the data section exactly: sorted by begin, each begins where the previous ended.
            entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            long expectedBegin = 0;
            string previous = "";
            foreach (var e in entries)
            {
                if (e.Begin < expectedBegin)
                    throw new InvalidCheckpointException(Path, e.Name, $"data_offsets [{e.Begin}, {e.End}] overlap tensor '{previous}' (which ends at {expectedBegin})");
                if (e.Begin > expectedBegin)
                    throw new InvalidCheckpointException(Path, e.Name, $"data_offsets begin at {e.Begin} but the previous tensor ends at {expectedBegin}: the data section has a hole");
                expectedBegin = e.End;
                previous = e.Name;
            }
            if (expectedBegin != dataLength)
                throw new InvalidCheckpointException(Path, "header", $"tensors cover {expectedBegin} bytes of a {dataLength}-byte data section (trailing bytes or truncated file)");

            var views = new List<TensorView>(entries.Count);
            foreach (var e in entries)
            {
                var view = new TensorView(this, e.Name, e.DType, e.Shape, DataSectionStart + e.Begin, e.End - e.Begin);
                _tensors.Add(e.Name, view);
                views.Add(view);
            }
            Tensors = views;
        }
    }

    private Dictionary<string, string> ParseMetadata(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidCheckpointException(Path, "__metadata__", $"is a JSON {value.ValueKind}, expected an object of strings");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new InvalidCheckpointException(Path, $"__metadata__.{p.Name}", $"is a JSON {p.Value.ValueKind}, expected a string");
            result[p.Name] = p.Value.GetString()!;
        }
        return result;
    }

    private (string, SafetensorsDType, long[], long, long) ParseEntry(string name, JsonElement value, SafetensorsLimits limits, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidCheckpointException(Path, name, $"header entry is a JSON {value.ValueKind}, expected an object with dtype, shape, data_offsets");

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new InvalidCheckpointException(Path, name, "missing string field 'dtype'");
        string dtypeName = dtypeElement.GetString()!;
        if (!SafetensorsDTypes.TryParse(dtypeName, out var dtype, out int elementSize))
        {
            bool known = SafetensorsDTypes.IsKnownUnsupported(dtypeName);
            throw new InvalidCheckpointException(Path, name,
                known ? $"dtype '{dtypeName}' is not supported (expected F32, F16 or BF16)" : $"unknown dtype '{dtypeName}' (expected F32, F16 or BF16)",
                unsupported: known);
        }

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new InvalidCheckpointException(Path, name, "missing array field 'shape'");
        int rank = shapeElement.GetArrayLength();
        if (rank > limits.MaxRank)
            throw new InvalidCheckpointException(Path, name, $"shape has rank {rank}, more than the {limits.MaxRank} accepted");
        var shape = new long[rank];
        int k = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new InvalidCheckpointException(Path, name, $"shape entry {k} is '{d.GetRawText()}', expected a non-negative integer");
            shape[k++] = dim;
        }

        if (!value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
            throw new InvalidCheckpointException(Path, name, "missing field 'data_offsets' (expected [begin, end])");
        var begin = offsetsElement[0];
        var end = offsetsElement[1];
        if (begin.ValueKind != JsonValueKind.Number || end.ValueKind != JsonValueKind.Number || !begin.TryGetInt64(out long b) || !end.TryGetInt64(out long e) || b < 0 || e < b)
            throw new InvalidCheckpointException(Path, name, $"data_offsets [{begin.GetRawText()}, {end.GetRawText()}] are not 0 <= begin <= end");
        if (e > dataLength)
            throw new InvalidCheckpointException(Path, name, $"data_offsets end {e} > data section of {dataLength} bytes (truncated file?)");

        long expectedBytes;
        try { expectedBytes = checked(ShapeMath.ElementCount(shape) * elementSize); }
        catch (OverflowException) { throw new InvalidCheckpointException(Path, name, $"shape {ShapeMath.Format(shape)} overflows 64-bit size"); }
        if (e - b != expectedBytes)
            throw new InvalidCheckpointException(Path, name, $"data_offsets span {e - b} bytes, but {dtypeName}{ShapeMath.Format(shape)} needs {expectedBytes}");
        return (name, dtype, shape, b, e);
    }

    public void Dispose() => _map.Dispose();
}
