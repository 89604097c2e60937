using HymbaTools.Common;

namespace HymbaTools.Checkpoints;

/// <summary>How the weights of a HuggingFace checkpoint directory are laid out.</summary>
public enum WeightLayout { None, SingleFile, Sharded }

/// <summary>
/// Locates the files of a HuggingFace checkpoint directory (config.json, single or sharded safetensors,
/// tokenizer files). Parses nothing; the Hymba-specific reading lives in Model/.
/// </summary>
public sealed record CheckpointDirectory(string Directory, string ConfigPath, WeightLayout Layout, string? WeightsPath)
{
    public const string ConfigFileName = "config.json";
    public const string SingleFileName = "model.safetensors";

    /// <summary>The Hub repository and commit when the directory is a snapshot in the local HuggingFace cache (provenance).</summary>
    public HubSnapshot? Hub => HubSnapshot.FromDirectory(Directory);

    public static CheckpointDirectory Locate(string path)
    {
        string full = Path.GetFullPath(path);
        if (File.Exists(full))
        {
            // A path to config.json or to a safetensors file inside the directory is accepted too; any other file is not
            // a checkpoint, and saying "config.json is missing" about its directory would send the user elsewhere.
            string name = Path.GetFileName(full);
            if (name != ConfigFileName && name != SafetensorsIndex.FileName && !name.EndsWith(".safetensors", StringComparison.Ordinal))
                throw new InvalidCheckpointException(path, "", HasGgufMagic(full)
                    ? "is a GGUF file; this command reads a HuggingFace checkpoint directory (config.json + safetensors)"
                    : "is a file, not a checkpoint (expected a directory with config.json, a .gguf file or an ONNX export directory)");
            full = Path.GetDirectoryName(full)!;
        }
        if (!System.IO.Directory.Exists(full))
            throw new InvalidCheckpointException(path, "", "no such file or directory");
        string config = Path.Combine(full, ConfigFileName);
        if (!File.Exists(config))
            throw new InvalidConfigException(config, "", "config.json is missing (a HuggingFace checkpoint directory needs it)");

        string index = Path.Combine(full, SafetensorsIndex.FileName);
        string single = Path.Combine(full, SingleFileName);
        if (File.Exists(index)) return new(full, config, WeightLayout.Sharded, index);
        if (File.Exists(single)) return new(full, config, WeightLayout.SingleFile, single);
        var others = System.IO.Directory.GetFiles(full, "*.safetensors")
            .Where(f => !Path.GetFileName(f).StartsWith("golden", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        if (others.Length == 1) return new(full, config, WeightLayout.SingleFile, others[0]);
        if (others.Length > 1)
            throw new InvalidCheckpointException(full, SafetensorsIndex.FileName, $"{others.Length} safetensors files but no index file to say which tensors each holds");
        return new(full, config, WeightLayout.None, null);
    }

    private static bool HasGgufMagic(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        try
        {
            using var stream = File.OpenRead(path);
            return stream.Read(magic) == 4 && magic.SequenceEqual("GGUF"u8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    public TensorSet OpenTensors(SafetensorsLimits? limits = null) => Layout switch
    {
        WeightLayout.SingleFile => TensorSet.OpenSingle(WeightsPath!, limits),
        WeightLayout.Sharded => TensorSet.OpenSharded(WeightsPath!, limits),
        _ => TensorSet.Empty(),
    };
}
