using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using HymbaTools.Common;

namespace HymbaTools.Text;

/// <summary>
/// A HuggingFace "fast" tokenizer (<c>tokenizer.json</c> + <c>tokenizer_config.json</c>) written from the
/// SentencePiece BPE model hymba tokenizes with, in the layout transformers' LlamaConverter writes for Llama-2 /
/// Hymba with <c>legacy: true</c>: a BPE model (the pieces as vocabulary, merges derived from the piece scores,
/// byte fallback, <c>&lt;unk&gt;</c>), a Prepend("▁") + Replace(" ", "▁") normaliser and no pre-tokeniser, a decoder
/// Replace("▁", " ") / ByteFallback / Fuse / Strip(1 leading space), and BOS/EOS from add_bos_token/add_eos_token.
/// This is what onnxruntime-genai's tokenizer (onnxruntime-extensions) loads: it reads the decoder to know the model
/// is SentencePiece-style and has a dummy prefix, applies <c>tokenizer_class</c> and the BOS rule from
/// tokenizer_config.json, and ignores the normaliser; a Metaspace pre-tokeniser variant tokenizes the same there.
/// Bytes depend only on the parsed tokenizer (<see cref="TokenizerFiles.Vocabulary"/>, the BOS/EOS rule, the chat
/// template), so a checkpoint and a GGUF file made from it give the same files.
/// </summary>
public static class HuggingFaceTokenizerJson
{
    public const string TokenizerFile = "tokenizer.json";
    private const string Space = "\u2581";
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4;

    /// <summary>The added token Hymba uses for padding (added_tokens.json), as <see cref="HymbaTokenizer.PadId"/> finds it.</summary>
    private const string PadToken = "[PAD]";

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        // Pieces are text in any script: keep them readable, as HuggingFace writes them; JSON stays valid.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>
    /// What onnxruntime-extensions and HuggingFace need from tokenizer.json cannot express every SentencePiece
    /// normaliser: only the Llama setting (identity normalisation, whitespace kept) is written.
    /// </summary>
    public static void CheckSupported(TokenizerFiles files, string origin)
    {
        var m = files.Model;
        if (m.PrecompiledCharsmap.Length > 0 || m.NormalizerName is not ("" or "identity"))
            throw new InvalidCheckpointException(origin, "normalizer_spec.name", $"'{m.NormalizerName}' cannot be written as a tokenizer.json that onnxruntime-genai reproduces (expected 'identity', as Llama's tokenizer)", unsupported: true);
        if (m.RemoveExtraWhitespaces)
            throw new InvalidCheckpointException(origin, "normalizer_spec.remove_extra_whitespaces", "true cannot be written as a tokenizer.json that onnxruntime-genai reproduces (expected false, as Llama's tokenizer)", unsupported: true);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var piece in files.Vocabulary())
            if (!seen.Add(piece.Piece))
                throw new InvalidCheckpointException(origin, "pieces", $"'{piece.Piece}' occurs twice (expected each token once: tokenizer.json maps text to one id)");
        if (!m.EscapeWhitespaces)
            throw new InvalidCheckpointException(origin, "normalizer_spec.escape_whitespaces", "false cannot be written as a tokenizer.json (expected true, as Llama's tokenizer)", unsupported: true);
    }

    /// <summary>tokenizer.json: UTF-8, two-space indent, keys in the order the tokenizers library writes them.</summary>
    public static byte[] Tokenizer(TokenizerFiles files)
    {
        var vocabulary = files.Vocabulary();
        var m = files.Model;
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            for (int id = 0; id < vocabulary.Count; id++)
            {
                int type = vocabulary[id].Type;
                if (type is not (Unknown or Control or UserDefined)) continue;
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("content", vocabulary[id].Piece);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                // Control pieces and the added tokens (read as control pieces) are special, as hymba treats them;
                // user-defined pieces are plain text that is never split, as in SentencePiece and transformers.
                w.WriteBoolean("special", type != UserDefined);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartObject("normalizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("normalizers");
            if (m.AddDummyPrefix)
            {
                w.WriteStartObject();
                w.WriteString("type", "Prepend");
                w.WriteString("prepend", Space);
                w.WriteEndObject();
            }
            WriteReplace(w, " ", Space);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteNull("pre_tokenizer");
            WritePostProcessor(w, files, vocabulary);

            w.WriteStartObject("decoder");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("decoders");
            WriteReplace(w, Space, " ");
            w.WriteStartObject();
            w.WriteString("type", "ByteFallback");
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "Fuse");
            w.WriteEndObject();
            if (m.AddDummyPrefix)
            {
                // Drops the dummy prefix's space; onnxruntime-extensions also reads this step as "dummy prefix on".
                w.WriteStartObject();
                w.WriteString("type", "Strip");
                w.WriteString("content", " ");
                w.WriteNumber("start", 1);
                w.WriteNumber("stop", 0);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();

            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteString("unk_token", TokenAt(vocabulary, m.UnknownId) ?? "<unk>");
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", true);
            w.WriteBoolean("byte_fallback", m.ByteFallback);
            w.WriteStartObject("vocab");
            for (int id = 0; id < vocabulary.Count; id++) w.WriteNumber(vocabulary[id].Piece, id);
            w.WriteEndObject();
            var merges = Merges(vocabulary);
            // "left right" strings are what every tokenizers version reads; pieces never hold a plain space (it is "▁"),
            // but should one, the pair form keeps the split unambiguous.
            bool pairs = merges.Any(p => p.Left.Contains(' ', StringComparison.Ordinal) || p.Right.Contains(' ', StringComparison.Ordinal));
            w.WriteStartArray("merges");
            foreach (var (left, right) in merges)
            {
                if (!pairs) { w.WriteStringValue(left + " " + right); continue; }
                w.WriteStartArray();
                w.WriteStringValue(left);
                w.WriteStringValue(right);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
        return stream.ToArray();
    }

    /// <summary>
    /// tokenizer_config.json with what a fast tokenizer and onnxruntime-genai read: the class (onnxruntime-extensions picks
    /// its BPE tokenizer by it), the BOS/EOS rule, the special tokens and the chat template. Written as transformers'
    /// save_pretrained writes it (sorted keys, two-space indent).
    /// </summary>
    public static byte[] Config(TokenizerFiles files)
    {
        var vocabulary = files.Vocabulary();
        var m = files.Model;
        var config = new JsonObject
        {
            ["add_bos_token"] = files.AddBos,
            ["add_eos_token"] = files.AddEos,
            ["bos_token"] = TokenAt(vocabulary, m.BosId),
            ["eos_token"] = TokenAt(vocabulary, m.EosId),
            ["unk_token"] = TokenAt(vocabulary, m.UnknownId),
            ["clean_up_tokenization_spaces"] = false,
            ["legacy"] = true,
            ["tokenizer_class"] = "LlamaTokenizer",
        };
        if (vocabulary.Any(p => p.Piece == PadToken && p.Type == Control)) config["pad_token"] = PadToken;
        if (files.ChatTemplate is { } template) config["chat_template"] = template;
        return System.Text.Encoding.UTF8.GetBytes(PythonStyleJson.Serialize(config));
    }

    /// <summary>
    /// Every split of a normal piece into two normal pieces, ordered as SentencePiece's BPE applies them: by the merged
    /// piece's score, highest first (ties: lower id of the merged piece, then of the left and right piece), which is the
    /// order transformers' SentencePieceExtractor derives. Only normal pieces merge in SentencePiece, so control, byte and
    /// unused pieces take no part.
    /// </summary>
    internal static List<(string Left, string Right)> Merges(IReadOnlyList<SentencePiece> vocabulary)
    {
        var normal = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < vocabulary.Count; id++)
            if (vocabulary[id].Type == Normal) normal.TryAdd(vocabulary[id].Piece, id);
        var merges = new List<(float Score, int Id, int Left, int Right, string L, string R)>();
        foreach (var (piece, id) in normal)
        {
            // Split between whole UTF-16 code points only: a piece is text, and so are both halves.
            for (int cut = 1; cut < piece.Length; cut++)
            {
                if (char.IsLowSurrogate(piece[cut])) continue;
                string left = piece[..cut], right = piece[cut..];
                if (normal.TryGetValue(left, out int l) && normal.TryGetValue(right, out int r))
                    merges.Add((vocabulary[id].Score, id, l, r, left, right));
            }
        }
        return merges
            .OrderByDescending(x => x.Score).ThenBy(x => x.Id).ThenBy(x => x.Left).ThenBy(x => x.Right)
            .Select(x => (x.L, x.R)).ToList();
    }

    private static void WritePostProcessor(Utf8JsonWriter w, TokenizerFiles files, IReadOnlyList<SentencePiece> vocabulary)
    {
        string? bos = files.AddBos ? TokenAt(vocabulary, files.Model.BosId) : null;
        string? eos = files.AddEos ? TokenAt(vocabulary, files.Model.EosId) : null;
        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        void Sequence(string name, int typeId, bool withBos)
        {
            if (withBos && bos is not null) Special(bos, typeId);
            w.WriteStartObject();
            w.WriteStartObject("Sequence");
            w.WriteString("id", name);
            w.WriteNumber("type_id", typeId);
            w.WriteEndObject();
            w.WriteEndObject();
            if (eos is not null) Special(eos, typeId);
        }
        void Special(string token, int typeId)
        {
            w.WriteStartObject();
            w.WriteStartObject("SpecialToken");
            w.WriteString("id", token);
            w.WriteNumber("type_id", typeId);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteStartArray("single");
        Sequence("A", 0, withBos: true);
        w.WriteEndArray();
        w.WriteStartArray("pair");
        Sequence("A", 0, withBos: true);
        Sequence("B", 1, withBos: true);
        w.WriteEndArray();
        w.WriteStartObject("special_tokens");
        foreach (var (token, id) in new[] { (bos, files.Model.BosId), (eos, files.Model.EosId) }.Where(t => t.Item1 is not null).Distinct())
        {
            w.WriteStartObject(token!);
            w.WriteString("id", token);
            w.WriteStartArray("ids");
            w.WriteNumberValue(id);
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            w.WriteStringValue(token);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteReplace(Utf8JsonWriter w, string pattern, string content)
    {
        w.WriteStartObject();
        w.WriteString("type", "Replace");
        w.WriteStartObject("pattern");
        w.WriteString("String", pattern);
        w.WriteEndObject();
        w.WriteString("content", content);
        w.WriteEndObject();
    }

    private static string? TokenAt(IReadOnlyList<SentencePiece> vocabulary, int id) => id >= 0 && id < vocabulary.Count ? vocabulary[id].Piece : null;
}
