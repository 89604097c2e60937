using HymbaTools.Checkpoints;
using HymbaTools.Common;

namespace HymbaTools.Cli;

/// <summary>What a command's input is, from its files alone (nothing parsed beyond a magic number).</summary>
[Flags]
internal enum ArtifactKind
{
    None = 0,
    /// <summary>A HuggingFace checkpoint directory with config.json and safetensors weights.</summary>
    Checkpoint = 1,
    /// <summary>A checkpoint directory with config.json and no weights (`init --config-only`).</summary>
    ConfigOnly = 2,
    Gguf = 4,
    OnnxExport = 8,
    Any = Checkpoint | ConfigOnly | Gguf | OnnxExport,
    /// <summary>What runs a forward pass.</summary>
    Runnable = Checkpoint | Gguf | OnnxExport,
}

/// <summary>
/// The one place every command asks what it was given: a checkpoint, a config-only directory, a GGUF file or an ONNX
/// export. A command that cannot read that kind stops before any work with one line naming what the input is and
/// what the command needs, instead of failing later on a tensor or file the input was never meant to have.
/// </summary>
internal static class ArtifactKinds
{
    private static readonly (ArtifactKind Kind, string Name)[] Names =
    [
        (ArtifactKind.Checkpoint, "a HuggingFace checkpoint directory (config.json + safetensors)"),
        (ArtifactKind.ConfigOnly, "a checkpoint directory without weights (config.json only)"),
        (ArtifactKind.Gguf, "a GGUF file"),
        (ArtifactKind.OnnxExport, "an ONNX export directory"),
    ];

    /// <summary>The kind of <paramref name="path"/>, or None when it is none of them (missing, or another file: its reader says what is wrong).</summary>
    public static ArtifactKind Sniff(string path)
    {
        if (Runtime.OnnxRunner.IsOnnxDirectory(path)) return ArtifactKind.OnnxExport;
        if (ArtifactLoader.IsGguf(path)) return ArtifactKind.Gguf;
        if (!Directory.Exists(path) || !File.Exists(Path.Combine(path, CheckpointDirectory.ConfigFileName))) return ArtifactKind.None;
        try { return CheckpointDirectory.Locate(path).Layout == WeightLayout.None ? ArtifactKind.ConfigOnly : ArtifactKind.Checkpoint; }
        catch (HymbaInputException) { return ArtifactKind.Checkpoint; } // a damaged checkpoint: its reader names the damage
    }

    public static string Describe(ArtifactKind kind) => string.Join(" or ", Names.Where(n => kind.HasFlag(n.Kind)).Select(n => n.Name));

    /// <summary>Stops with an input error when <paramref name="path"/> is a kind <paramref name="command"/> does not read; returns the kind.</summary>
    public static ArtifactKind Require(string path, string command, ArtifactKind accepted)
    {
        var kind = Sniff(path);
        if (kind == ArtifactKind.None || accepted.HasFlag(kind)) return kind;
        throw new InvalidCheckpointException(path, "", $"is {Describe(kind)}; `{command}` needs {Describe(accepted)}");
    }
}
