using System.Text.Json;
using HymbaTools.Common;

namespace HymbaTools.Text;

/// <summary>
/// A checkpoint's tokenizer files, parsed once: the SentencePiece <c>tokenizer.model</c>, the tokens of
/// <c>added_tokens.json</c> (token -> id, after the pieces) and from <c>tokenizer_config.json</c> add_bos_token /
/// add_eos_token / chat_template. The tokenizer and the GGUF writer both read this, with one set of error messages.
/// </summary>
public sealed record TokenizerFiles(SentencePieceModel Model, IReadOnlyDictionary<string, int> AddedTokens, bool AddBos, bool AddEos, string? ChatTemplate)
{
    public const string ModelFile = "tokenizer.model";
    public const string AddedTokensFile = "added_tokens.json";
    public const string ConfigFile = "tokenizer_config.json";

    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, ModelFile));

    public static TokenizerFiles Read(string directory)
    {
        string modelPath = Path.Combine(directory, ModelFile);
        if (!File.Exists(modelPath)) throw new InvalidCheckpointException(directory, ModelFile, "missing (the checkpoint ships no SentencePiece tokenizer)");
        var model = SentencePieceModel.Read(modelPath);

        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        string addedPath = Path.Combine(directory, AddedTokensFile);
        if (File.Exists(addedPath))
        {
            using var doc = ParseJson(addedPath);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidConfigException(addedPath, "$", "expected an object of token -> id");
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                    throw new InvalidConfigException(addedPath, entry.Name, "expected a non-negative integer id");
                added[entry.Name] = id;
            }
        }

        bool addBos = true, addEos = false; // LlamaTokenizer's defaults
        string? template = null;
        string configPath = Path.Combine(directory, ConfigFile);
        if (File.Exists(configPath))
        {
            using var doc = ParseJson(configPath);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidConfigException(configPath, "$", "expected an object");
            if (root.TryGetProperty("add_bos_token", out var b) && b.ValueKind is JsonValueKind.True or JsonValueKind.False) addBos = b.GetBoolean();
            if (root.TryGetProperty("add_eos_token", out var e) && e.ValueKind is JsonValueKind.True or JsonValueKind.False) addEos = e.GetBoolean();
            if (root.TryGetProperty("chat_template", out var t) && t.ValueKind == JsonValueKind.String) template = t.GetString();
        }
        return new TokenizerFiles(model, added, addBos, addEos, template);
    }

    /// <summary>The whole vocabulary: the pieces, then the added tokens in id order as control tokens (an id gap is an error).</summary>
    public IReadOnlyList<SentencePiece> Vocabulary()
    {
        var all = Model.Pieces.ToList();
        foreach (var (token, id) in AddedTokens.OrderBy(kv => kv.Value))
        {
            if (id < all.Count) continue;
            if (id != all.Count) throw new InvalidConfigException(AddedTokensFile, token, $"id {id} leaves a gap after {all.Count} tokens");
            all.Add(new SentencePiece(token, 0f, 3));
        }
        return all;
    }

    private static JsonDocument ParseJson(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new InvalidConfigException(path, "", $"cannot read ({e.Message})"); }
        return JsonInput.Document(bytes, 16, problem => new InvalidConfigException(path, "", problem));
    }
}
