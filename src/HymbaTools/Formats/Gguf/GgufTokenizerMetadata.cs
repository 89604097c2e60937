using HymbaTools.Model;
using HymbaTools.Text;

namespace HymbaTools.Formats.Gguf;

/// <summary>
/// tokenizer.ggml.* keys written from a checkpoint's parsed tokenizer files (<see cref="TokenizerFiles"/>: model
/// "llama", tokens with scores and types, the added tokens as control tokens, add_bos/add_eos, the chat template,
/// and the SentencePiece normaliser switches under llama.cpp's key names), and read back into tokenizer files,
/// so a GGUF file tokenizes without its checkpoint.
/// </summary>
internal static class GgufTokenizerMetadata
{
    public const string Model = "tokenizer.ggml.model";
    public const string Tokens = "tokenizer.ggml.tokens";
    public const string Scores = "tokenizer.ggml.scores";
    public const string TokenTypes = "tokenizer.ggml.token_type";
    public const string UnknownId = "tokenizer.ggml.unknown_token_id";
    public const string AddBos = "tokenizer.ggml.add_bos_token";
    public const string AddEos = "tokenizer.ggml.add_eos_token";
    public const string AddSpacePrefix = "tokenizer.ggml.add_space_prefix";
    public const string RemoveExtraWhitespaces = "tokenizer.ggml.remove_extra_whitespaces";
    public const string PrecompiledCharsmap = "tokenizer.ggml.precompiled_charsmap";
    public const string ChatTemplate = "tokenizer.chat_template";

    public static bool AddIfPresent(GgufWriter writer, string directory, HymbaConfig config)
    {
        if (!TokenizerFiles.Exists(directory)) return false;
        var files = TokenizerFiles.Read(directory);
        var vocabulary = files.Vocabulary();
        if (vocabulary.Count > config.VocabSize)
            throw new InvalidGgufException(Path.Combine(directory, TokenizerFiles.ModelFile), "pieces", $"{vocabulary.Count} tokens but the model's vocab_size is {config.VocabSize}");
        var m = files.Model;
        writer.Add(Model, GgufValue.Str("llama"));
        writer.Add(Tokens, GgufValue.Strings(vocabulary.Select(p => p.Piece)));
        writer.Add(Scores, GgufValue.Float32s(vocabulary.Select(p => p.Score)));
        writer.Add(TokenTypes, GgufValue.Int32s(vocabulary.Select(p => p.Type)));
        writer.Add(UnknownId, GgufValue.U32((uint)Math.Max(0, m.UnknownId)));
        writer.Add(AddBos, GgufValue.Bool(files.AddBos));
        writer.Add(AddEos, GgufValue.Bool(files.AddEos));
        writer.Add(AddSpacePrefix, GgufValue.Bool(m.AddDummyPrefix));
        writer.Add(RemoveExtraWhitespaces, GgufValue.Bool(m.RemoveExtraWhitespaces));
        if (m.PrecompiledCharsmap.Length > 0)
            writer.Add(PrecompiledCharsmap, GgufValue.Array(GgufValueType.UInt8, m.PrecompiledCharsmap.Select(GgufValue.U8).ToList()));
        if (files.ChatTemplate is { } template) writer.Add(ChatTemplate, GgufValue.Str(template));
        return true;
    }

    /// <summary>The tokenizer files a GGUF file's tokenizer.ggml.* keys describe, or null when it has none.</summary>
    public static TokenizerFiles? Read(GgufFile file)
    {
        if (!file.TryGet(Model, out var model)) return null;
        if (model.Type != GgufValueType.String || model.AsString != "llama")
            throw new InvalidGgufException(file.Path, Model, $"{model} is not supported (expected \"llama\", a SentencePiece BPE vocabulary)", unsupported: true);
        IReadOnlyList<GgufValue> Array(string key, GgufValueType type)
        {
            var value = file.Get(key);
            if (value.Type != GgufValueType.Array || value.ElementType != type) throw new InvalidGgufException(file.Path, key, $"expected an array of {type}");
            return value.Elements;
        }
        bool Flag(string key, bool fallback) => file.TryGet(key, out var v) && v.Type == GgufValueType.Bool ? v.AsBool : fallback;
        long Id(string key, long fallback) => file.TryGet(key, out var v) && v.Type != GgufValueType.Array && v.Type != GgufValueType.String ? v.AsInteger : fallback;

        var tokens = Array(Tokens, GgufValueType.String);
        var scores = Array(Scores, GgufValueType.Float32);
        var types = Array(TokenTypes, GgufValueType.Int32);
        if (scores.Count != tokens.Count || types.Count != tokens.Count)
            throw new InvalidGgufException(file.Path, Scores, $"{tokens.Count} tokens, {scores.Count} scores and {types.Count} types (expected one of each per token)");
        var pieces = tokens.Select((t, i) => new SentencePiece(t.AsString, (float)scores[i].AsDouble, (int)types[i].AsInteger)).ToList();
        byte[] charsmap = file.TryGet(PrecompiledCharsmap, out var map) && map.Type == GgufValueType.Array && map.ElementType == GgufValueType.UInt8
            ? map.Elements.Select(e => (byte)e.AsInteger).ToArray() : [];
        var rebuilt = new SentencePieceModel(pieces, SentencePieceModel.Bpe, ByteFallback: pieces.Any(p => p.Type == 6),
            UnknownId: (int)Id(UnknownId, 0), BosId: (int)Id("tokenizer.ggml.bos_token_id", 1), EosId: (int)Id("tokenizer.ggml.eos_token_id", 2), PadId: -1,
            NormalizerName: charsmap.Length > 0 ? "nmt_nfkc" : "identity", PrecompiledCharsmap: charsmap,
            AddDummyPrefix: Flag(AddSpacePrefix, true), RemoveExtraWhitespaces: Flag(RemoveExtraWhitespaces, false), EscapeWhitespaces: true);
        string? template = file.TryGet(ChatTemplate, out var t) && t.Type == GgufValueType.String ? t.AsString : null;
        // Every token is a piece of the rebuilt model; added tokens stay control pieces, which text never encodes to.
        return new TokenizerFiles(rebuilt, new Dictionary<string, int>(), Flag(AddBos, true), Flag(AddEos, false), template);
    }
}
