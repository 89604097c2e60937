using System.Text.Json;
using HymbaTools.Common;
using Microsoft.ML.Tokenizers;

namespace HymbaTools.Text;

/// <summary>
/// The tokenizer of a Hymba checkpoint: its SentencePiece <c>tokenizer.model</c> (Hymba ships the Llama-2 model
/// plus <c>[PAD]</c> = 32000) loaded with Microsoft.ML.Tokenizers, with added tokens from
/// <c>added_tokens.json</c> as special tokens and BOS/EOS handling from <c>tokenizer_config.json</c> /
/// <c>special_tokens_map.json</c> (default: add BOS, as LlamaTokenizer does).
/// </summary>
public sealed class HymbaTokenizer
{
    private readonly LlamaTokenizer _tokenizer;

    private HymbaTokenizer(LlamaTokenizer tokenizer, bool addBos, bool addEos, int bos, int eos, int? pad, string? chatTemplate)
    {
        _tokenizer = tokenizer;
        AddBos = addBos;
        AddEos = addEos;
        BosId = bos;
        EosId = eos;
        PadId = pad;
        ChatTemplate = chatTemplate;
    }

    public bool AddBos { get; }
    public bool AddEos { get; }
    public int BosId { get; }
    public int EosId { get; }
    public int? PadId { get; }
    public string? ChatTemplate { get; }

    /// <summary>Number of pieces of a SentencePiece model file (the vocabulary before added tokens).</summary>
    public static int CountPieces(string modelPath)
    {
        try
        {
            using var stream = File.OpenRead(modelPath);
            return LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false).Vocabulary.Count;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or IOException)
        {
            throw new InvalidCheckpointException(modelPath, "", $"cannot load the SentencePiece model ({e.Message})");
        }
    }

    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, "tokenizer.model"));

    public static HymbaTokenizer Load(string directory)
    {
        string modelPath = Path.Combine(directory, "tokenizer.model");
        if (!File.Exists(modelPath)) throw new InvalidCheckpointException(directory, "tokenizer.model", "missing (the checkpoint ships no SentencePiece tokenizer)");
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        string added = Path.Combine(directory, "added_tokens.json");
        if (File.Exists(added))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(added));
                foreach (var entry in doc.RootElement.EnumerateObject()) special[entry.Name] = entry.Value.GetInt32();
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                throw new InvalidConfigException(added, "$", $"not an object of token -> id ({e.Message})");
            }
        }
        bool addBos = true, addEos = false;
        string? template = null;
        string config = Path.Combine(directory, "tokenizer_config.json");
        if (File.Exists(config))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(config));
            var root = doc.RootElement;
            if (root.TryGetProperty("add_bos_token", out var b) && b.ValueKind is JsonValueKind.True or JsonValueKind.False) addBos = b.GetBoolean();
            if (root.TryGetProperty("add_eos_token", out var e) && e.ValueKind is JsonValueKind.True or JsonValueKind.False) addEos = e.GetBoolean();
            if (root.TryGetProperty("chat_template", out var t) && t.ValueKind == JsonValueKind.String) template = t.GetString();
        }
        LlamaTokenizer tokenizer;
        try
        {
            using var stream = File.OpenRead(modelPath);
            tokenizer = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false, specialTokens: special.Count > 0 ? special : null);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new InvalidCheckpointException(modelPath, "", $"cannot load the SentencePiece model ({e.Message})");
        }
        int? pad = special.TryGetValue("[PAD]", out int p) ? p : null;
        return new HymbaTokenizer(tokenizer, addBos, addEos, tokenizer.BeginningOfSentenceId, tokenizer.EndOfSentenceId, pad, template);
    }

    /// <summary>Token ids of a text; BOS/EOS as the tokenizer config says unless overridden.</summary>
    public long[] Encode(string text, bool? addBos = null, bool? addEos = null)
    {
        var ids = _tokenizer.EncodeToIds(text).Select(i => (long)i).ToList();
        if (addBos ?? AddBos) ids.Insert(0, BosId);
        if (addEos ?? AddEos) ids.Add(EosId);
        return ids.ToArray();
    }

    public string Decode(IEnumerable<long> ids) => _tokenizer.Decode(ids.Where(i => i != BosId && i != EosId).Select(i => (int)i)) ?? "";
}
