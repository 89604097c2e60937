using System.Text;
using HymbaTools.Common;
using HymbaTools.Quantization;

namespace HymbaTools.Formats.Gguf;

/// <summary>A tensor to write: ggml-order dims (ne[0] = contiguous axis), type, and a callback that writes exactly its bytes.</summary>
internal sealed record GgufTensorEntry(string Name, long[] Dimensions, GgmlType Type, Action<Stream> WriteData)
{
    public long ByteLength
    {
        get
        {
            long rows = 1;
            for (int i = 1; i < Dimensions.Length; i++) rows = checked(rows * Dimensions[i]);
            return checked(GgmlTypes.RowBytes(Type, Dimensions[0]) * rows);
        }
    }
}

/// <summary>
/// Streaming GGUF v3 writer. Metadata and tensor infos are collected first; <see cref="Write"/> then lays out
/// the header (magic, version, counts, key/values, tensor infos with offsets consecutive in tensor-info
/// order and aligned), pads, and streams each tensor's data through its callback, padding each to the
/// alignment. Peak memory is what one callback holds. Output is atomic (temporary name, then rename) and
/// the same entries give the same bytes.
/// </summary>
internal sealed class GgufWriter
{
    private readonly List<(string Key, GgufValue Value)> _metadata = [];
    private readonly List<GgufTensorEntry> _tensors = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public uint Alignment { get; private set; } = GgufConstants.DefaultAlignment;
    public IReadOnlyList<(string Key, GgufValue Value)> Metadata => _metadata;
    public IReadOnlyList<GgufTensorEntry> Tensors => _tensors;

    /// <summary>Whether a key was added already.</summary>
    public bool Has(string key) => _keys.Contains(key);

    public GgufWriter Add(string key, GgufValue value)
    {
        if (string.IsNullOrEmpty(key) || key.Length > GgufConstants.MaxKeyBytes || key.Any(c => c > 127))
            throw new ArgumentException($"GGUF key '{key}' must be non-empty ASCII of at most {GgufConstants.MaxKeyBytes} bytes");
        if (!_keys.Add(key)) throw new InvalidOperationException($"GGUF key '{key}' added twice");
        if (key == GgufConstants.AlignmentKey)
        {
            if (value.Type != GgufValueType.UInt32) throw new ArgumentException($"{key} must be a UINT32");
            uint a = (uint)value.AsInteger;
            if (a == 0 || (a & (a - 1)) != 0) throw new ArgumentException($"{key} must be a non-zero power of two");
            Alignment = a;
        }
        _metadata.Add((key, value));
        return this;
    }

    /// <summary>Metadata key holding the checksum (<see cref="TensorDigest"/>) of every tensor's data, in tensor order (hex strings).</summary>
    public const string TensorChecksumsKey = "general.tensor_xxh3_128";
    /// <summary>The sha256 per-tensor key of files written before 0.2; still verified.</summary>
    public const string LegacyTensorChecksumsKey = "general.tensor_sha256";
    /// <summary>Hex length of the sha256 digests that provenance keys (source files) hold.</summary>
    public const int Sha256HexLength = 64;

    /// <summary>
    /// Records every tensor's checksum in <see cref="TensorChecksumsKey"/>. Call after the last tensor: the key is
    /// written with placeholders of the final length, and the digests, computed while the data streams out, are
    /// patched into the header before the file is renamed into place.
    /// </summary>
    public GgufWriter AddTensorChecksums() => AddDeferredDigests(TensorChecksumsKey, _tensors.Count, TensorDigest.HexLength, () => _tensorDigests);

    /// <summary>
    /// A key holding <paramref name="count"/> hex digests of <paramref name="hexLength"/> digits that are known only
    /// after the data is written (or are computed meanwhile on another thread): placeholders of the final length go
    /// into the header and <paramref name="resolve"/>'s digests are patched in before the file is renamed into place.
    /// </summary>
    public GgufWriter AddDeferredDigests(string key, int count, int hexLength, Func<IReadOnlyList<string>> resolve)
    {
        Add(key, GgufValue.Strings(Enumerable.Repeat(new string('0', hexLength), count)));
        _deferred.Add((key, count, hexLength, resolve));
        return this;
    }

    private readonly List<(string Key, int Count, int HexLength, Func<IReadOnlyList<string>> Resolve)> _deferred = [];
    private readonly List<string> _tensorDigests = [];

    public GgufWriter AddTensor(GgufTensorEntry tensor)
    {
        if (Encoding.UTF8.GetByteCount(tensor.Name) > GgufConstants.MaxTensorNameBytes)
            throw new ArgumentException($"tensor name '{tensor.Name}' is longer than {GgufConstants.MaxTensorNameBytes} bytes");
        if (tensor.Dimensions.Length is 0 or > GgufConstants.MaxDimensions)
            throw new ArgumentException($"tensor '{tensor.Name}' has {tensor.Dimensions.Length} dimensions (1..{GgufConstants.MaxDimensions})");
        if (!_names.Add(tensor.Name)) throw new InvalidOperationException($"tensor '{tensor.Name}' added twice");
        _ = tensor.ByteLength; // validates the row against the block size
        _tensors.Add(tensor);
        return this;
    }

    /// <summary>Tensor data offsets (relative to the data section), in tensor-info order.</summary>
    public long[] DataOffsets()
    {
        var offsets = new long[_tensors.Count];
        long offset = 0;
        for (int i = 0; i < _tensors.Count; i++)
        {
            offsets[i] = offset;
            offset = GgufConstants.Pad(offset + _tensors[i].ByteLength, Alignment);
        }
        return offsets;
    }

    /// <summary>Exact size of the file <see cref="Write"/> would produce.</summary>
    public long FileSize
    {
        get
        {
            var offsets = DataOffsets();
            long data = _tensors.Count == 0 ? 0 : offsets[^1] + GgufConstants.Pad(_tensors[^1].ByteLength, Alignment);
            return BuildHeader().Length + data;
        }
    }

    public byte[] BuildHeader()
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufConstants.Magic);
        w.Write(GgufConstants.Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        var offsets = DataOffsets();
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            WriteString(w, t.Name);
            w.Write((uint)t.Dimensions.Length);
            foreach (long d in t.Dimensions) w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write((ulong)offsets[i]);
        }
        w.Flush();
        long padded = GgufConstants.Pad(ms.Length, Alignment);
        ms.SetLength(padded);
        return ms.ToArray();
    }

    public void Write(string path, IProgress<(long Done, long Total)>? progress = null)
    {
        var header = BuildHeader();
        long total = _tensors.Sum(t => t.ByteLength);
        long done = 0;
        _tensorDigests.Clear();
        AtomicFile.Write(path, stream =>
        {
            stream.Write(header);
            var padding = new byte[Alignment];
            foreach (var t in _tensors)
            {
                Interruption.ThrowIfRequested();
                long before = stream.Position;
                using (var hashing = new HashingStream(stream))
                {
                    t.WriteData(hashing);
                    _tensorDigests.Add(hashing.Digest());
                }
                long written = stream.Position - before;
                if (written != t.ByteLength)
                    throw new InvalidOperationException($"tensor '{t.Name}': writer produced {written} bytes, expected {t.ByteLength}");
                long pad = GgufConstants.Pad(written, Alignment) - written;
                stream.Write(padding, 0, (int)pad);
                done += t.ByteLength;
                progress?.Report((done, total));
            }
            foreach (var (key, count, hexLength, resolve) in _deferred)
            {
                var digests = resolve();
                if (digests.Count != count || digests.Any(d => d.Length != hexLength || !d.All(char.IsAsciiHexDigitLower)))
                    throw new InvalidOperationException($"GGUF key '{key}': expected {count} lowercase hex digests of {hexLength} digits");
                // Each placeholder is a u64 length then the hex digits; overwrite the digits in place.
                long first = ArrayOffset(key);
                for (int i = 0; i < count; i++)
                {
                    stream.Position = first + i * (8L + hexLength) + 8;
                    stream.Write(Encoding.ASCII.GetBytes(digests[i]));
                }
            }
            stream.Position = stream.Length;
        });
    }

    /// <summary>Offset of the first element of an array value in the header.</summary>
    private long ArrayOffset(string arrayKey)
    {
        long offset = 4 + 4 + 8 + 8; // magic, version, tensor count, metadata count
        foreach (var (key, value) in _metadata)
        {
            offset += 8 + Encoding.UTF8.GetByteCount(key) + 4;
            if (key == arrayKey) return offset + 4 + 8; // element type, count
            using var ms = new MemoryStream();
            using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true)) WriteValue(w, value);
            offset += ms.Length;
        }
        throw new InvalidOperationException($"GGUF key '{arrayKey}' not in the header");
    }

    /// <summary>Forwards writes to the file and checksums them on the way.</summary>
    private sealed class HashingStream(Stream inner) : Stream
    {
        private readonly System.IO.Hashing.XxHash128 _hash = TensorDigest.Incremental();
        public string Digest() => TensorDigest.Finish(_hash);
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.Append(buffer);
            inner.Write(buffer);
        }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue v)
    {
        switch (v.Type)
        {
            case GgufValueType.UInt8: w.Write((byte)v.Value); break;
            case GgufValueType.Int8: w.Write((sbyte)v.Value); break;
            case GgufValueType.UInt16: w.Write((ushort)v.Value); break;
            case GgufValueType.Int16: w.Write((short)v.Value); break;
            case GgufValueType.UInt32: w.Write((uint)v.Value); break;
            case GgufValueType.Int32: w.Write((int)v.Value); break;
            case GgufValueType.Float32: w.Write((float)v.Value); break;
            case GgufValueType.Bool: w.Write((byte)((bool)v.Value ? 1 : 0)); break;
            case GgufValueType.String: WriteString(w, (string)v.Value); break;
            case GgufValueType.UInt64: w.Write((ulong)v.Value); break;
            case GgufValueType.Int64: w.Write((long)v.Value); break;
            case GgufValueType.Float64: w.Write((double)v.Value); break;
            case GgufValueType.Array:
                w.Write((uint)v.ElementType);
                w.Write((ulong)v.Elements.Count);
                foreach (var e in v.Elements) WriteValue(w, e);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(v));
        }
    }
}
