using HymbaTools.Formats.Gguf;
using HymbaTools.Formats.Onnx;
using HymbaTools.Model;

namespace HymbaTools.Reports;

/// <summary>Label, file size and bits per weight of an artifact, for comparison reports.</summary>
internal sealed record ArtifactDescription(string Label, long FileBytes, double BitsPerWeight)
{
    /// <summary>A .gguf file is labelled by its preset (plus "+imatrix" when calibrated); a checkpoint by its directory name (a Hub snapshot by its repository).</summary>
    public static ArtifactDescription Of(string path)
    {
        if (File.Exists(path) && GgufFile.IsGguf(path))
        {
            using var f = GgufFile.Open(path);
            string label = f.TryGet("general.quantization.preset", out var preset)
                ? preset.AsString + (f.TryGet("quantize.imatrix.chunks_count", out _) ? "+imatrix" : "")
                : Path.GetFileName(path);
            return new ArtifactDescription(label, f.Length, 8.0 * f.Tensors.Sum(t => t.ByteLength) / f.Tensors.Sum(t => t.ElementCount));
        }
        if (Runtime.OnnxRunner.IsOnnxDirectory(path))
        {
            var config = HymbaConfig.Load(Path.Combine(path, "config.json"));
            long bytes = new[] { HymbaOnnxNames.ModelFile, HymbaOnnxNames.DataFile }.Select(f => Path.Combine(path, f)).Where(File.Exists).Sum(Common.FileLength.Of);
            long parameters = HymbaTensorCatalog.For(config).Where(t => t.Name != HymbaTensorCatalog.LmHead || !config.TieWordEmbeddings).Sum(t => t.ElementCount);
            return new ArtifactDescription($"onnx:{OnnxTypeOf(path)}", bytes, 8.0 * bytes / parameters);
        }
        using var ckpt = HymbaCheckpoint.Open(path, new CheckpointReadOptions { ScanNonFinite = false });
        var tensors = ckpt.Tensors.ByName.Values.ToList();
        return new ArtifactDescription(ckpt.Files.Hub?.RepoId ?? Path.GetFileName(path.TrimEnd('/')), ckpt.Tensors.Files.Sum(f => f.Length),
            8.0 * tensors.Sum(t => t.ByteLength) / tensors.Sum(t => t.ElementCount));
    }

    /// <summary>The weight type recorded in hymba_export.json ("f32", "int4", "int4/acc0", ...).</summary>
    private static string OnnxTypeOf(string directory)
    {
        try
        {
            var hymba = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllBytes(Path.Combine(directory, HymbaOnnxNames.ExportInfoFile)));
            string type = hymba?["weight_type"]?.GetValue<string>() ?? "?";
            // The default accuracy level (4) is not spelled out; float32 compute is.
            return hymba?["accuracy_level"]?.GetValue<int>() is int level && level != 4 ? $"{type}/acc{level}" : type;
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidOperationException or ArgumentException) { return "?"; }
    }
}
