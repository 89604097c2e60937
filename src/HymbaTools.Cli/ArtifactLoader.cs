using HymbaTools.Formats.Gguf;
using HymbaTools.Model;
using HymbaTools.Verification;

namespace HymbaTools.Cli;

/// <summary>Opens whatever artifact a command was given (a HuggingFace directory or a .gguf file) as a runner.</summary>
internal static class ArtifactLoader
{
    public static bool IsGguf(string path) => File.Exists(path) && GgufFile.IsGguf(path);

    public static IHymbaRunner Open(string path, TextWriter stderr)
    {
        if (IsGguf(path))
        {
            using var gguf = GgufTensorSource.Open(path);
            return new ReferenceRunner(HymbaModel.Load(gguf), Path.GetFullPath(path));
        }
        using var checkpoint = HymbaCheckpoint.Open(path);
        foreach (var w in checkpoint.Warnings) stderr.WriteLine($"warning: {w}");
        if (!checkpoint.HasWeights)
            throw new HymbaTools.Common.InvalidCheckpointException(checkpoint.Files.Directory, "", "no weights (config.json only): the forward pass needs model.safetensors or an index with shards");
        var model = HymbaModel.Load(new CheckpointTensorSource(checkpoint));
        return new ReferenceRunner(model, checkpoint.Files.Directory);
    }
}
