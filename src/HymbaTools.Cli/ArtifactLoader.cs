using HymbaTools.Runtime;
using HymbaTools.Formats.Gguf;
using HymbaTools.Formats.Onnx;
using HymbaTools.Model;


namespace HymbaTools.Cli;

/// <summary>Opens whatever artifact a command was given (a HuggingFace directory, a .gguf file or an ONNX export directory).</summary>
internal static class ArtifactLoader
{
    /// <summary>A file with GGUF magic, or named .gguf (then a bad header is reported as such, not as a missing config.json).</summary>
    public static bool IsGguf(string path) => File.Exists(path) && (GgufFile.IsGguf(path) || path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase));

    public static IHymbaRunner Open(string path, TextWriter stderr)
    {
        if (OnnxRunner.IsOnnxDirectory(path)) return OnnxRunner.Open(path);
        if (IsGguf(path))
        {
            using var gguf = GgufTensorSource.Open(path);
            return new ReferenceRunner(HymbaModel.Load(gguf), Path.GetFullPath(path)) { Runtime = "TorchSharp f32 (dequantized)" };
        }
        using var checkpoint = HymbaCheckpoint.Open(path);
        foreach (var w in checkpoint.Warnings) stderr.WriteLine($"warning: {w}");
        if (!checkpoint.HasWeights)
            throw new HymbaTools.Common.InvalidCheckpointException(checkpoint.Files.Directory, "", "no weights (config.json only): the forward pass needs model.safetensors or an index with shards");
        var model = HymbaModel.Load(new CheckpointTensorSource(checkpoint));
        return new ReferenceRunner(model, checkpoint.Files.Directory);
    }

    /// <summary>
    /// The tokenizer for an artifact: --tokenizer DIR when given; a .gguf file's own tokenizer.ggml.* metadata when it
    /// has some and its directory has no tokenizer.model; otherwise tokenizer.model beside the artifact.
    /// </summary>
    public static HymbaTools.Text.HymbaTokenizer Tokenizer(string artifact, string? explicitDirectory) =>
        TryTokenizer(artifact, explicitDirectory)
        ?? throw new HymbaTools.Common.InvalidRequestException("--tokenizer", $"{CliOutput.TokenizerDirectory(artifact, explicitDirectory)} has no tokenizer.model (give --tokenizer DIR)");

    /// <summary>As <see cref="Tokenizer"/>, or null when the artifact carries none.</summary>
    public static HymbaTools.Text.HymbaTokenizer? TryTokenizer(string artifact, string? explicitDirectory)
    {
        string directory = CliOutput.TokenizerDirectory(artifact, explicitDirectory);
        if (explicitDirectory is null && IsGguf(artifact) && !HymbaTools.Text.TokenizerFiles.Exists(directory))
        {
            using var file = GgufFile.Open(artifact);
            return GgufTokenizerMetadata.Read(file) is { } files ? HymbaTools.Text.HymbaTokenizer.From(files, artifact) : null;
        }
        return HymbaTools.Text.TokenizerFiles.Exists(directory) ? HymbaTools.Text.HymbaTokenizer.Load(directory) : null;
    }

    /// <summary>An export's input: a checkpoint (with its tokenizer files) or a GGUF file (dequantized on read).</summary>
    /// <remarks>A GGUF file with quantized tensors is quantized again by a quantized export, and dequantized into another form by any: the same --allow-requantize rule as `quantize`.</remarks>
    public static ExportInput OpenExportSource(string path, TextWriter stderr, bool allowRequantize = false)
    {
        if (IsGguf(path))
        {
            var gguf = GgufTensorSource.Open(path);
            var requantized = gguf.File.Tensors.Where(t => !RequantizeRule.IsFloat(t.Type))
                .Select(t => $"{t.Name}: {HymbaTools.Quantization.GgmlTypes.NameOf(t.Type)} -> ONNX").ToList();
            try { RequantizeRule.Check(requantized, allowRequantize); }
            catch { gguf.Dispose(); throw; }
            if (RequantizeRule.Warning(requantized, "the export's README names the GGUF source") is { } warning) stderr.WriteLine(warning);
            var tokenizer = GgufTokenizerMetadata.Read(gguf.File);
            return new ExportInput(new OnnxExportSource(gguf, [Path.GetFullPath(path)], null, path) { Tokenizer = tokenizer }, gguf);
        }
        var checkpoint = HymbaCheckpoint.Open(path);
        foreach (var w in checkpoint.Warnings) stderr.WriteLine($"warning: {w}");
        if (!checkpoint.HasWeights)
        {
            checkpoint.Dispose();
            throw new HymbaTools.Common.InvalidCheckpointException(checkpoint.Files.Directory, "", "no weights (config.json only)");
        }
        var files = new[] { checkpoint.Files.ConfigPath }.Concat(checkpoint.Tensors.Files.Select(f => f.Path)).ToList();
        var generation = GenerationConfig.Load(checkpoint.Files.Directory);
        return new ExportInput(new OnnxExportSource(new CheckpointTensorSource(checkpoint), files, checkpoint.Files.Directory, checkpoint.Files.Directory) { GenerationConfig = generation }, checkpoint);
    }

    /// <summary>
    /// The checkpoint or GGUF an ONNX export was made from, when it is still on disk with the hashes the export
    /// recorded (a note on stderr otherwise, and null).
    /// </summary>
    public static IHymbaRunner? SourceOf(OnnxRunner export, TextWriter stderr)
    {
        if (!export.Metadata.TryGetValue(HymbaOnnxNames.MetaSourcePath, out var path)) return null;
        if (!(Directory.Exists(path) || File.Exists(path)))
        {
            stderr.WriteLine($"note: {path}, the export's source, is missing; not comparing with it");
            return null;
        }
        string directory = File.Exists(path) ? Path.GetDirectoryName(path)! : path;
        foreach (var line in export.Metadata.GetValueOrDefault(HymbaOnnxNames.MetaSourceSha256, "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ', 2);
            string file = Path.Combine(directory, parts[0]);
            // A deleted source file and an edited one are different news: say which.
            string? problem = parts.Length != 2 ? "its recorded hash is unreadable"
                : !File.Exists(file) ? "is missing"
                : HymbaTools.Common.FileSha256.Of(file) != parts[1] ? "changed since the export" : null;
            if (problem is not null)
            {
                stderr.WriteLine($"note: {path}: {parts[0]} {problem}; not comparing with it");
                return null;
            }
        }
        return Open(path, stderr);
    }
}

internal sealed record ExportInput(OnnxExportSource Source, IDisposable Owner) : IDisposable
{
    public void Dispose() => Owner.Dispose();
}
