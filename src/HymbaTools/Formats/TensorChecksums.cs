using HymbaTools.Formats.Gguf;
using HymbaTools.Formats.Onnx;
using HymbaTools.Formats.Onnx.Protos;

namespace HymbaTools.Formats;

/// <summary>One tensor whose data no longer hashes to what its file recorded, and the digest both are ("xxh3-128", or "sha256" in files before 0.2).</summary>
public sealed record ChecksumMismatch(string Tensor, string Recorded, string Actual, string Algorithm);

/// <summary>
/// Recomputes the per-tensor checksums an output recorded when it was written (GGUF: <c>general.tensor_xxh3_128</c>,
/// in tensor order; ONNX: the <c>hymba.tensor_xxh3_128</c> metadata, "name digest" per line; files written before
/// 0.2 hold sha256 under <c>*.tensor_sha256</c>, verified the same way) and lists every tensor whose bytes differ.
/// Null when the file recorded none.
/// </summary>
public static class TensorChecksums
{
    public static IReadOnlyList<ChecksumMismatch>? Verify(GgufFile file)
    {
        foreach (var (suffix, hexLength, compute) in TensorDigest.Algorithms)
        {
            string key = "general.tensor_" + suffix;
            if (!file.TryGet(key, out var recorded)) continue;
            if (recorded.Type != GgufValueType.Array || recorded.ElementType != GgufValueType.String || recorded.Elements.Count != file.Tensors.Count)
                throw new InvalidGgufException(file.Path, key, $"expected one {suffix} string per tensor ({file.Tensors.Count})");
            var mismatches = new List<ChecksumMismatch>();
            for (int i = 0; i < file.Tensors.Count; i++)
            {
                string actual = compute(file.Data(file.Tensors[i]).ToArray());
                string expected = recorded.Elements[i].AsString;
                if (actual != expected) mismatches.Add(new ChecksumMismatch(file.Tensors[i].Name, expected, actual, Label(suffix)));
            }
            return mismatches;
        }
        return null;
    }

    public static IReadOnlyList<ChecksumMismatch>? VerifyOnnx(string directory)
    {
        string modelPath = Path.Combine(directory, HymbaOnnxNames.ModelFile);
        ModelProto model;
        using (var stream = File.OpenRead(modelPath))
        {
            try { model = ModelProto.Parser.ParseFrom(stream); }
            catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new Common.InvalidCheckpointException(modelPath, "", $"not an ONNX model ({e.Message})"); }
        }
        foreach (var (suffix, _, compute) in TensorDigest.Algorithms)
        {
            var text = model.MetadataProps.FirstOrDefault(p => p.Key == "hymba.tensor_" + suffix)?.Value;
            if (text is null) continue;
            var recorded = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);
            var mismatches = new List<ChecksumMismatch>();
            foreach (var tensor in model.Graph.Initializer.Where(t => recorded.ContainsKey(t.Name)))
            {
                string actual = compute(Bytes(directory, modelPath, tensor));
                if (actual != recorded[tensor.Name]) mismatches.Add(new ChecksumMismatch(tensor.Name, recorded[tensor.Name], actual, Label(suffix)));
            }
            foreach (var name in recorded.Keys.Where(n => model.Graph.Initializer.All(t => t.Name != n)))
                mismatches.Add(new ChecksumMismatch(name, recorded[name], "(missing)", Label(suffix)));
            return mismatches;
        }
        return null;
    }

    /// <summary>The digest's name as people write it ("xxh3_128" -> "xxh3-128").</summary>
    private static string Label(string suffix) => suffix.Replace('_', '-');

    private static byte[] Bytes(string directory, string modelPath, TensorProto tensor)
    {
        if (tensor.DataLocation != TensorProto.Types.DataLocation.External) return tensor.RawData.ToByteArray();
        string Get(string key) => tensor.ExternalData.FirstOrDefault(e => e.Key == key)?.Value
            ?? throw new Common.InvalidCheckpointException(modelPath, tensor.Name, $"external data without '{key}'");
        string location = Get("location");
        if (location.Contains('/') || location.Contains('\\') || location.StartsWith('.'))
            throw new Common.InvalidCheckpointException(modelPath, tensor.Name, $"external data location '{location}' leaves the directory");
        if (!long.TryParse(Get("offset"), out long offset) || !long.TryParse(Get("length"), out long length) || offset < 0 || length < 0 || length > int.MaxValue)
            throw new Common.InvalidCheckpointException(modelPath, tensor.Name, "external data offset/length are not valid");
        using var data = File.OpenRead(Path.Combine(directory, location));
        if (offset > data.Length - length) throw new Common.InvalidCheckpointException(modelPath, tensor.Name, "external data beyond the end of its file");
        var bytes = new byte[length];
        data.Position = offset;
        data.ReadExactly(bytes);
        return bytes;
    }
}
