using System.Globalization;
using HymbaTools.Formats.Gguf;
using HymbaTools.Model;
using HymbaTools.Quantization;

namespace HymbaTools.Reports;

/// <summary>`inspect` of a GGUF file: the config rebuilt from hymba.* metadata, stored bytes by ggml type, and the container facts.</summary>
public static class GgufInspect
{
    public static InspectReport For(GgufTensorSource source, IReadOnlyList<long>? sequenceLengths = null)
    {
        var file = source.File;
        var config = source.Config;
        var catalogFootprint = ModelFootprint.Of(config);
        var bytes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var t in file.Tensors) bytes[GgmlTypes.NameOf(t.Type)] = bytes.GetValueOrDefault(GgmlTypes.NameOf(t.Type)) + t.ByteLength;
        long elements = file.Tensors.Sum(t => t.ElementCount);
        var footprint = catalogFootprint with { BytesByDType = bytes, TensorCount = file.Tensors.Count, ParameterCount = elements };
        var container = new List<(string, string)>
        {
            ("format", $"GGUF v{file.Version}"),
            ("file bytes", file.Length.ToString("N0", CultureInfo.InvariantCulture)),
            ("alignment", file.Alignment.ToString(CultureInfo.InvariantCulture)),
            ("metadata keys", file.Metadata.Count.ToString(CultureInfo.InvariantCulture)),
            ("bits per weight", (8.0 * file.Tensors.Sum(t => t.ByteLength) / elements).ToString("F3", CultureInfo.InvariantCulture)),
        };
        if (file.TryGet(GgufWriter.TensorChecksumsKey, out var sums))
            container.Add(("tensor xxh3-128", $"{sums.Elements.Count} recorded (inspect --checksums verifies them)"));
        else if (file.TryGet(GgufWriter.LegacyTensorChecksumsKey, out var legacy))
            container.Add(("tensor sha256", $"{legacy.Elements.Count} recorded (inspect --checksums verifies them)"));
        foreach (var (key, value) in file.Metadata.Where(kv => kv.Key.StartsWith("general.", StringComparison.Ordinal) && kv.Value.Type != GgufValueType.Array))
            container.Add((key, value.ToString()));
        return new InspectReport(file.Path, config, footprint, true, "GGUF", sequenceLengths is { Count: > 0 } ? sequenceLengths : InspectReport.DefaultSequenceLengths, [])
        {
            Container = container,
        };
    }
}
