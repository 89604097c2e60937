using System.Globalization;
using HymbaTools.Formats.Onnx.Protos;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// Where the weight initializers of an exported graph go: inline in the protobuf (raw_data), or, when the
/// model is large, appended to one external data file next to the model, each at an offset that is a
/// multiple of 4096 so ONNX Runtime can map it (ONNX external-data keys location/offset/length). A protobuf
/// message cannot exceed 2 GiB, so large models must go external; small tensors stay inline even then.
/// Tensors are written as they are produced, so the exporter holds one tensor at a time.
/// </summary>
internal sealed class OnnxInitializerStore : IDisposable
{
    /// <summary>Tensors smaller than this stay inline even in an external-data model (norm gains, biases).</summary>
    public const int InlineBelowBytes = 1024;
    public const int Alignment = 4096;

    private readonly FileStream? _data;
    private readonly string? _location;

    /// <param name="dataPath">the external data file to create, or null for an all-inline model</param>
    public OnnxInitializerStore(string? dataPath)
    {
        if (dataPath is null) return;
        _data = new FileStream(dataPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        _location = Path.GetFileName(dataPath);
    }

    public bool IsExternal => _data is not null;
    public List<TensorProto> Tensors { get; } = [];
    public long ExternalBytes => _data?.Length ?? 0;

    /// <summary>Checksum (<see cref="TensorDigest"/>) of every tensor's bytes, in the order they were added (recorded in the model's metadata).</summary>
    public List<(string Name, string Digest)> Checksums { get; } = [];

    public void Add(string name, long[] dims, DataType type, ReadOnlySpan<byte> bytes)
    {
        Checksums.Add((name, TensorDigest.Of(bytes)));
        if (_data is null || bytes.Length < InlineBelowBytes)
        {
            Tensors.Add(OnnxGraphBuilder.RawTensor(name, dims, type, bytes));
            return;
        }
        long offset = _data.Position;
        long padding = (Alignment - offset % Alignment) % Alignment;
        if (padding > 0)
        {
            Span<byte> zeros = stackalloc byte[(int)padding];
            zeros.Clear();
            _data.Write(zeros);
            offset += padding;
        }
        _data.Write(bytes);
        var tensor = new TensorProto { Name = name, DataType = (int)type, DataLocation = TensorProto.Types.DataLocation.External };
        tensor.Dims.AddRange(dims);
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = _location });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString(CultureInfo.InvariantCulture) });
        Tensors.Add(tensor);
    }

    /// <summary>Flushes the external data to disk (the exporter renames the directory into place afterwards).</summary>
    public void Complete() => _data?.Flush(flushToDisk: true);

    public void Dispose() => _data?.Dispose();
}
