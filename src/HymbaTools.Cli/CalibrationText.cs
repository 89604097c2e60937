using HymbaTools.Common;
using HymbaTools.Text;

namespace HymbaTools.Cli;

/// <summary>--calibration TEXT: a UTF-8 text file encoded with the artifact's own tokenizer (the text a bit budget and GPTQ measure on).</summary>
internal static class CalibrationText
{
    public static (long[] Ids, string Source) Read(string artifact, string path, int vocab)
    {
        if (!File.Exists(path)) throw new InvalidRequestException("--calibration", $"{path}: file not found");
        var tokenizer = ArtifactLoader.TryTokenizer(artifact, null)
            ?? throw new InvalidRequestException("--calibration", $"{artifact} has no tokenizer to encode {path} with");
        var ids = tokenizer.Encode(TextFile.Read(path, "--calibration", null));
        if (ids.Any(id => id >= vocab)) throw new InvalidRequestException("--calibration", $"the tokenizer of {artifact} produces ids beyond the model's vocabulary of {vocab}");
        return (ids, Path.GetFileName(path));
    }
}
