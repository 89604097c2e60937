using HymbaTools.Common;
using Microsoft.ML.Tokenizers;

namespace HymbaTools.Text;

/// <summary>
/// The tokenizer of a Hymba checkpoint: its SentencePiece <c>tokenizer.model</c> (Hymba ships the Llama-2 model
/// plus <c>[PAD]</c> = 32000) loaded with Microsoft.ML.Tokenizers, with added tokens from
/// <c>added_tokens.json</c> as special tokens and BOS/EOS handling from <c>tokenizer_config.json</c> /
/// <c>special_tokens_map.json</c> (default: add BOS, as LlamaTokenizer does). Encoding is SentencePiece's own BPE
/// (<see cref="SentencePieceBpe"/>: Microsoft.ML.Tokenizers 2.0.1 breaks equal-score ties differently); decoding is
/// Microsoft.ML.Tokenizers'.
/// </summary>
public sealed class HymbaTokenizer
{
    private readonly LlamaTokenizer _tokenizer;
    private readonly SentencePieceBpe _encoder;

    private readonly TokenizerFiles _files;

    private HymbaTokenizer(TokenizerFiles files, LlamaTokenizer tokenizer, SentencePieceBpe encoder, bool addBos, bool addEos, int bos, int eos, int? pad, string? chatTemplate)
    {
        _files = files;
        _tokenizer = tokenizer;
        _encoder = encoder;
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
    public static int CountPieces(string modelPath) => SentencePieceModel.Read(modelPath).Pieces.Count;

    public static bool Exists(string directory) => TokenizerFiles.Exists(directory);

    public static HymbaTokenizer Load(string directory) => From(TokenizerFiles.Read(directory), Path.Combine(directory, TokenizerFiles.ModelFile));

    /// <summary>A tokenizer from parsed files (a checkpoint's, or rebuilt from a GGUF file's tokenizer.ggml.* keys).</summary>
    public static HymbaTokenizer From(TokenizerFiles files, string origin)
    {
        LlamaTokenizer tokenizer;
        try
        {
            using var stream = new MemoryStream(files.Model.Bytes);
            var special = files.AddedTokens.Count > 0 ? files.AddedTokens.ToDictionary(kv => kv.Key, kv => kv.Value) : null;
            tokenizer = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false, specialTokens: special);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or Google.Protobuf.InvalidProtocolBufferException)
        {
            throw new InvalidCheckpointException(origin, "", $"cannot load the SentencePiece model ({e.Message})");
        }
        int? pad = files.AddedTokens.TryGetValue("[PAD]", out int p) ? p : null;
        return new HymbaTokenizer(files, tokenizer, new SentencePieceBpe(files.Model, files.AddedTokens), files.AddBos, files.AddEos, tokenizer.BeginningOfSentenceId, tokenizer.EndOfSentenceId, pad, files.ChatTemplate);
    }

    /// <summary>Every token's text in id order (the pieces, then the added tokens): two tokenizers with equal vocabularies encode alike.</summary>
    public IReadOnlyList<string> Vocabulary() => [.. _files.Vocabulary().Select(p => p.Piece)];

    /// <summary>True when <paramref name="token"/> is one token that text is cut at (an added or user-defined token), not text to encode piece by piece.</summary>
    public bool HasSpecialToken(string token) => _encoder.IsSpecial(token);

    /// <summary>Token ids of a text; BOS/EOS as the tokenizer config says unless overridden.</summary>
    public long[] Encode(string text, bool? addBos = null, bool? addEos = null)
    {
        var ids = _encoder.Encode(text).Select(i => (long)i).ToList();
        if (addBos ?? AddBos) ids.Insert(0, BosId);
        if (addEos ?? AddEos) ids.Add(EosId);
        return ids.ToArray();
    }

    public string Decode(IEnumerable<long> ids) => _tokenizer.Decode(ids.Where(i => i != BosId && i != EosId).Select(i => (int)i)) ?? "";
}
