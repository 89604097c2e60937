using HymbaTools.Model;
using HymbaTools.Verification;

namespace HymbaTools.Cli;

/// <summary>Opens whatever artifact a command was given (a HuggingFace directory today) as a runner.</summary>
internal static class ArtifactLoader
{
    public static IHymbaRunner Open(string path, TextWriter stderr)
    {
        using var checkpoint = HymbaCheckpoint.Open(path);
        foreach (var w in checkpoint.Warnings) stderr.WriteLine($"warning: {w}");
        if (!checkpoint.HasWeights)
            throw new HymbaTools.Common.InvalidCheckpointException(checkpoint.Files.Directory, "", "no weights (config.json only): the forward pass needs model.safetensors or an index with shards");
        var model = HymbaModel.Load(new CheckpointTensorSource(checkpoint));
        return new ReferenceRunner(model, checkpoint.Files.Directory);
    }
}
