using System.Buffers.Binary;
using System.Text;

namespace HymbaTools.Tests.TestData;

/// <summary>Crafts safetensors files byte by byte, including broken ones (tests build evil inputs in code, not as committed binaries).</summary>
public static class SafetensorsBuilder
{
    /// <summary>A file with the given raw header JSON and data bytes; headerLength overrides the prefix when given.</summary>
    public static void WriteRaw(string path, string headerJson, byte[] data, ulong? headerLength = null)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        using var f = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, headerLength ?? (ulong)header.Length);
        f.Write(prefix);
        f.Write(header);
        f.Write(data);
    }

    /// <summary>One valid F32 tensor "w" of shape [2, 3].</summary>
    public static void WriteValid(string path) =>
        WriteRaw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", new byte[24]);
}
