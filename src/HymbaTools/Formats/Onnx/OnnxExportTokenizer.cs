using HymbaTools.Text;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// The tokenizer files of an ONNX export. tokenizer.json and tokenizer_config.json are always written from the
/// SentencePiece model hymba tokenizes with (<see cref="HuggingFaceTokenizerJson"/>), never copied: a checkpoint's own
/// tokenizer.json comes from some converter version (merge order, normaliser variant, added tokens) that nothing checks
/// against tokenizer.model, while the written one is tested to give onnxruntime-genai hymba's ids. The other files are
/// copied from a checkpoint directory; a GGUF file's tokenizer.ggml.* keys give tokenizer.model. A directory with no
/// tokenizer.model keeps whatever tokenizer files it has (there is then nothing to agree with).
/// </summary>
internal sealed class OnnxExportTokenizer
{
    /// <summary>Tokenizer and generation files copied from the source directory when present.</summary>
    public static readonly string[] CompanionFiles =
        [TokenizerFiles.ModelFile, HuggingFaceTokenizerJson.TokenizerFile, TokenizerFiles.ConfigFile, "special_tokens_map.json", TokenizerFiles.AddedTokensFile, "generation_config.json"];

    private readonly string? _directory;
    private readonly TokenizerFiles? _parsed;
    private readonly bool _fromDirectory;

    private OnnxExportTokenizer(string? directory, TokenizerFiles? parsed, bool fromDirectory)
    {
        _directory = directory;
        _parsed = parsed;
        _fromDirectory = fromDirectory;
    }

    /// <summary>Reads and checks the source's tokenizer before any work, so a tokenizer genai cannot reproduce fails early.</summary>
    public static OnnxExportTokenizer Prepare(OnnxExportSource source)
    {
        if (source.TokenizerDirectory is { } directory)
        {
            var files = TokenizerFiles.Exists(directory) ? TokenizerFiles.Read(directory) : null;
            if (files is not null) HuggingFaceTokenizerJson.CheckSupported(files, Path.Combine(directory, TokenizerFiles.ModelFile));
            return new OnnxExportTokenizer(directory, files, fromDirectory: true);
        }
        if (source.Tokenizer is { } rebuilt) HuggingFaceTokenizerJson.CheckSupported(rebuilt, source.Path);
        return new OnnxExportTokenizer(null, source.Tokenizer, fromDirectory: false);
    }

    public void Write(string exportDirectory, Action<string, byte[]> writeFile)
    {
        if (_fromDirectory)
            foreach (var file in CompanionFiles)
            {
                if (_parsed is not null && file is HuggingFaceTokenizerJson.TokenizerFile or TokenizerFiles.ConfigFile) continue;
                string from = Path.Combine(_directory!, file);
                if (File.Exists(from)) File.Copy(from, Path.Combine(exportDirectory, file));
            }
        else if (_parsed is not null)
            writeFile(Path.Combine(exportDirectory, TokenizerFiles.ModelFile), _parsed.Model.Bytes);
        if (_parsed is null) return;
        writeFile(Path.Combine(exportDirectory, HuggingFaceTokenizerJson.TokenizerFile), HuggingFaceTokenizerJson.Tokenizer(_parsed));
        writeFile(Path.Combine(exportDirectory, TokenizerFiles.ConfigFile), HuggingFaceTokenizerJson.Config(_parsed));
    }
}
