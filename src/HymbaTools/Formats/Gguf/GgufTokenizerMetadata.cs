using System.Text.Json;
using Google.Protobuf;
using HymbaTools.Model;

namespace HymbaTools.Formats.Gguf;

/// <summary>
/// tokenizer.ggml.* keys from a checkpoint's SentencePiece <c>tokenizer.model</c> (model "llama": pieces,
/// scores and token types, whose numbering SentencePiece and GGUF share: 1 normal, 2 unknown, 3 control,
/// 4 user-defined, 5 unused, 6 byte), the tokens of added_tokens.json, add_bos/add_eos and the chat template
/// from tokenizer_config.json. The ModelProto is read field by field (field 1 = pieces; in a piece
/// 1 = piece, 2 = score, 3 = type) with Google.Protobuf's CodedInputStream.
/// </summary>
public static class GgufTokenizerMetadata
{
    public const string ModelFile = "tokenizer.model";

    public static bool AddIfPresent(GgufWriter writer, string directory, HymbaConfig config)
    {
        string modelPath = Path.Combine(directory, ModelFile);
        if (!File.Exists(modelPath)) return false;
        var (pieces, scores, types) = ReadSentencePiece(modelPath);
        string addedPath = Path.Combine(directory, "added_tokens.json");
        if (File.Exists(addedPath))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(addedPath));
            foreach (var p in doc.RootElement.EnumerateObject().OrderBy(p => p.Value.GetInt32()))
            {
                int id = p.Value.GetInt32();
                if (id < pieces.Count) continue;
                if (id != pieces.Count) throw new InvalidGgufException(addedPath, p.Name, $"id {id} leaves a gap after {pieces.Count} pieces");
                pieces.Add(p.Name);
                scores.Add(0f);
                types.Add(3);
            }
        }
        if (pieces.Count > config.VocabSize)
            throw new InvalidGgufException(modelPath, "pieces", $"{pieces.Count} tokens but the model's vocab_size is {config.VocabSize}");
        writer.Add("tokenizer.ggml.model", GgufValue.Str("llama"));
        writer.Add("tokenizer.ggml.tokens", GgufValue.Strings(pieces));
        writer.Add("tokenizer.ggml.scores", GgufValue.Float32s(scores));
        writer.Add("tokenizer.ggml.token_type", GgufValue.Int32s(types));
        writer.Add("tokenizer.ggml.unknown_token_id", GgufValue.U32((uint)Math.Max(0, types.IndexOf(2))));
        string configPath = Path.Combine(directory, "tokenizer_config.json");
        if (File.Exists(configPath))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(configPath));
            var root = doc.RootElement;
            if (root.TryGetProperty("add_bos_token", out var bos) && bos.ValueKind is JsonValueKind.True or JsonValueKind.False)
                writer.Add("tokenizer.ggml.add_bos_token", GgufValue.Bool(bos.GetBoolean()));
            if (root.TryGetProperty("add_eos_token", out var eos) && eos.ValueKind is JsonValueKind.True or JsonValueKind.False)
                writer.Add("tokenizer.ggml.add_eos_token", GgufValue.Bool(eos.GetBoolean()));
            if (root.TryGetProperty("chat_template", out var template) && template.ValueKind == JsonValueKind.String)
                writer.Add("tokenizer.chat_template", GgufValue.Str(template.GetString()!));
        }
        return true;
    }

    public static (List<string> Pieces, List<float> Scores, List<int> Types) ReadSentencePiece(string path)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<int>();
        try
        {
            using var stream = File.OpenRead(path);
            var input = new CodedInputStream(stream);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                if (WireFormat.GetTagFieldNumber(tag) != 1 || WireFormat.GetTagWireType(tag) != WireFormat.WireType.LengthDelimited)
                {
                    input.SkipLastField();
                    continue;
                }
                var bytes = input.ReadBytes();
                var piece = new CodedInputStream(bytes.ToByteArray());
                string text = "";
                float score = 0;
                int type = 1;
                uint inner;
                while ((inner = piece.ReadTag()) != 0)
                {
                    switch (WireFormat.GetTagFieldNumber(inner))
                    {
                        case 1: text = piece.ReadString(); break;
                        case 2: score = piece.ReadFloat(); break;
                        case 3: type = piece.ReadEnum(); break;
                        default: piece.SkipLastField(); break;
                    }
                }
                pieces.Add(text);
                scores.Add(score);
                types.Add(type);
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidGgufException(path, "", $"not a SentencePiece model ({e.Message})");
        }
        if (pieces.Count == 0) throw new InvalidGgufException(path, "pieces", "SentencePiece model has no pieces");
        return (pieces, scores, types);
    }
}
