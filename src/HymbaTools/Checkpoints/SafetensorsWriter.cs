using System.Text.Json;
using HymbaTools.Common;

namespace HymbaTools.Checkpoints;

internal sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape)
{
    public long ByteLength => checked(ShapeMath.ElementCount(Shape) * SafetensorsDTypes.SizeOf(DType));
}

/// <summary>
/// Streaming safetensors writer: the header (and so every offset) is computed from names, dtypes and
/// shapes first, then each tensor's bytes are produced by a callback and written in order, so memory is
/// bounded by what the callback holds. Tensors are laid out in ordinal name order (as HuggingFace's
/// save_pretrained files are), the header is padded with spaces to 8 bytes. Output is atomic and
/// deterministic.
/// </summary>
internal static class SafetensorsWriter
{
    public static void Write(string path, IReadOnlyList<SafetensorsEntry> entries, IReadOnlyDictionary<string, string>? metadata,
        Action<SafetensorsEntry, Stream> writeData)
    {
        var ordered = entries.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
        byte[] header = BuildHeader(ordered, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> prefix = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            foreach (var entry in ordered)
            {
                Interruption.ThrowIfRequested();
                long before = stream.Position;
                writeData(entry, stream);
                long written = stream.Position - before;
                if (written != entry.ByteLength)
                    throw new InvalidOperationException($"{entry.Name}: writer produced {written} bytes, expected {entry.ByteLength}");
            }
        });
    }

    internal static byte[] BuildHeader(IReadOnlyList<SafetensorsEntry> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var kv in metadata.OrderBy(k => k.Key, StringComparer.Ordinal)) json.WriteString(kv.Key, kv.Value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in ordered)
            {
                json.WriteStartObject(e.Name);
                json.WriteString("dtype", SafetensorsDTypes.NameOf(e.DType));
                json.WriteStartArray("shape");
                foreach (long d in e.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += e.ByteLength;
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int length = (int)buffer.Length;
        int padded = (length + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }
}
