using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Formats.Onnx;
using HymbaTools.Formats.Onnx.Protos;
using HymbaTools.Model;

namespace HymbaTools.Reports;

/// <summary>`inspect` of an ONNX export directory: its config, the graph's opsets and state I/O, and the weights by ONNX type.</summary>
public static class OnnxInspect
{
    public static InspectReport For(string directory, IReadOnlyList<long>? sequenceLengths = null)
    {
        string full = Path.GetFullPath(directory);
        var config = HymbaConfig.Load(Path.Combine(full, "config.json"));
        string modelPath = Path.Combine(full, HymbaOnnxNames.ModelFile);
        ModelProto model;
        try
        {
            using var stream = File.OpenRead(modelPath);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new InvalidCheckpointException(modelPath, "", $"not an ONNX model ({e.Message})"); }

        var bytes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        long elements = 0;
        foreach (var t in model.Graph.Initializer)
        {
            string type = ((TensorProto.Types.DataType)t.DataType).ToString().ToUpperInvariant();
            long length = t.DataLocation == TensorProto.Types.DataLocation.External
                ? long.Parse(t.ExternalData.FirstOrDefault(e => e.Key == "length")?.Value ?? "0", CultureInfo.InvariantCulture)
                : t.RawData.Length;
            bytes[type] = bytes.GetValueOrDefault(type) + length;
            elements += t.Dims.Aggregate(1L, (a, b) => a * b);
        }
        long dataBytes = File.Exists(Path.Combine(full, HymbaOnnxNames.DataFile)) ? FileLength.Of(Path.Combine(full, HymbaOnnxNames.DataFile)) : 0;
        var footprint = ModelFootprint.Of(config) with { BytesByDType = bytes, TensorCount = model.Graph.Initializer.Count };
        var opsets = string.Join(", ", model.OpsetImport.Select(o => $"{(o.Domain.Length == 0 ? "ai.onnx" : o.Domain)} {o.Version}"));
        var container = new List<(string, string)>
        {
            ("format", $"ONNX (IR {model.IrVersion}; {opsets})"),
            ("model.onnx bytes", FileLength.Of(modelPath).ToString("N0", CultureInfo.InvariantCulture)),
            ("model.onnx.data bytes", dataBytes.ToString("N0", CultureInfo.InvariantCulture)),
            ("graph nodes", model.Graph.Node.Count.ToString(CultureInfo.InvariantCulture)),
            ("inputs", $"{model.Graph.Input.Count} ({Count(model, ".key") + Count(model, ".value")} K/V, {Count(model, ".conv_state")} conv, {Count(model, ".recurrent_state")} SSM state)"),
            ("outputs", model.Graph.Output.Count.ToString(CultureInfo.InvariantCulture)),
        };
        var lengths = sequenceLengths is { Count: > 0 } ? sequenceLengths : InspectReport.DefaultSequenceLengths;
        string? firstKey = config.KvOwners.Select(l => HymbaOnnxNames.PastKey(l.Index)).FirstOrDefault();
        var keyInput = model.Graph.Input.FirstOrDefault(i => i.Name == firstKey);
        var keyValueType = keyInput?.Type.TensorType.ElemType == (int)TensorProto.Types.DataType.Float16 ? OnnxStateType.F16 : OnnxStateType.F32;
        var layout = new HymbaStateLayout(config, keyValueType);
        if (keyInput is not null && keyInput.Type.TensorType.Shape.Dim.Count == 4 && keyInput.Type.TensorType.Shape.Dim[3].DimValue != layout.EntryWidth)
            container.Add(("state", "an earlier hymba's layout (K/V zero-padded to one width, sliding groups unbounded in genai): export the checkpoint again"));
        else
            foreach (long s in lengths)
                container.Add(($"state bytes at {s:N0} text tokens ({(keyValueType == OnnxStateType.F16 ? "float16" : "float32")} K/V)",
                    string.Create(CultureInfo.InvariantCulture, $"{layout.BytesAt(s):N0} in hymba's runner and in onnxruntime-genai (sliding caches bounded by the graph)")));
        foreach (var p in model.MetadataProps.Where(p => p.Key is not (HymbaOnnxNames.MetaSourceSha256 or HymbaOnnxNames.MetaTensorChecksums or HymbaOnnxNames.MetaLegacyTensorSha256))) container.Add((p.Key, p.Value));
        if (model.MetadataProps.FirstOrDefault(p => p.Key is HymbaOnnxNames.MetaTensorChecksums or HymbaOnnxNames.MetaLegacyTensorSha256) is { } sums)
            container.Add((sums.Key == HymbaOnnxNames.MetaTensorChecksums ? "tensor xxh3-128" : "tensor sha256", $"{sums.Value.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length} recorded (inspect --checksums verifies them)"));
        foreach (var line in model.MetadataProps.Where(p => p.Key == HymbaOnnxNames.MetaSourceSha256).SelectMany(p => p.Value.Split('\n')))
            container.Add(("source sha256", line));
        return new InspectReport(full, config, footprint, true, "ONNX", lengths, [])
        {
            Container = container,
        };
    }

    private static int Count(ModelProto model, string suffix) =>
        model.Graph.Input.Count(i => i.Name.StartsWith("past_key_values.", StringComparison.Ordinal) && i.Name.EndsWith(suffix, StringComparison.Ordinal));
}
