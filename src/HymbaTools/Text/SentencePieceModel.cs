using Google.Protobuf;
using HymbaTools.Common;

namespace HymbaTools.Text;

/// <summary>One vocabulary entry; the type numbering is SentencePiece's and GGUF's alike: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.</summary>
public sealed record SentencePiece(string Piece, float Score, int Type);

/// <summary>
/// The parts of a SentencePiece <c>tokenizer.model</c> (a protobuf ModelProto) that define a BPE tokenizer: the
/// pieces, the special ids, byte fallback and the normaliser switches. Read field by field with Google.Protobuf's
/// CodedInputStream (ModelProto: 1 pieces, 2 trainer_spec, 3 normalizer_spec; piece: 1 text, 2 score, 3 type;
/// trainer_spec: 3 model_type, 35 byte_fallback, 40-43 unk/bos/eos/pad id; normalizer_spec: 1 name,
/// 2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces), and written
/// back from the same fields, so a GGUF file's tokenizer.ggml.* keys rebuild a model that tokenizes the same.
/// </summary>
public sealed record SentencePieceModel(
    IReadOnlyList<SentencePiece> Pieces,
    int ModelType,
    bool ByteFallback,
    int UnknownId,
    int BosId,
    int EosId,
    int PadId,
    string NormalizerName,
    byte[] PrecompiledCharsmap,
    bool AddDummyPrefix,
    bool RemoveExtraWhitespaces,
    bool EscapeWhitespaces)
{
    public const int Bpe = 2;

    /// <summary>
    /// trainer_spec and normalizer_spec exactly as a file held them (every field, also those not modelled here), or
    /// null when rebuilt from GGUF metadata. They were parsed field by field, so they are well-formed.
    /// </summary>
    public byte[]? TrainerSpecBytes { get; init; }
    public byte[]? NormalizerSpecBytes { get; init; }

    /// <summary>
    /// What a tokenizer loads: a ModelProto re-encoded from what was parsed (pieces, and the specs as read), never the
    /// file's own bytes, so a third-party reader only ever sees well-formed protobuf.
    /// </summary>
    public byte[] Bytes => ToBytes();

    public static SentencePieceModel Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new InvalidCheckpointException(path, "", $"cannot read ({e.Message})"); }
        try { return Parse(bytes, path); }
        catch (InvalidProtocolBufferException e) { throw new InvalidCheckpointException(path, "", $"not a SentencePiece model ({e.Message})"); }
    }

    private static SentencePieceModel Parse(byte[] bytes, string path)
    {
        var pieces = new List<SentencePiece>();
        // SentencePiece's defaults for fields a file leaves out.
        int modelType = 1, unk = 0, bos = 1, eos = 2, pad = -1;
        bool byteFallback = false, dummyPrefix = true, removeSpaces = true, escapeSpaces = true;
        string normalizer = "";
        byte[] charsmap = [];
        byte[]? trainerBytes = null, normalizerBytes = null;
        var input = new CodedInputStream(bytes);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            int field = WireFormat.GetTagFieldNumber(tag);
            if (WireFormat.GetTagWireType(tag) != WireFormat.WireType.LengthDelimited || field is not (1 or 2 or 3))
            {
                input.SkipLastField();
                continue;
            }
            byte[] messageBytes = input.ReadBytes().ToByteArray();
            var message = new CodedInputStream(messageBytes);
            uint inner;
            switch (field)
            {
                case 1:
                    string text = "";
                    float score = 0;
                    int type = 1;
                    while ((inner = message.ReadTag()) != 0)
                        switch (WireFormat.GetTagFieldNumber(inner))
                        {
                            case 1: text = message.ReadString(); break;
                            case 2: score = message.ReadFloat(); break;
                            case 3: type = message.ReadEnum(); break;
                            default: message.SkipLastField(); break;
                        }
                    pieces.Add(new SentencePiece(text, score, type));
                    break;
                case 2:
                    trainerBytes = messageBytes;
                    while ((inner = message.ReadTag()) != 0)
                        switch (WireFormat.GetTagFieldNumber(inner))
                        {
                            case 3: modelType = message.ReadEnum(); break;
                            case 35: byteFallback = message.ReadBool(); break;
                            case 40: unk = message.ReadInt32(); break;
                            case 41: bos = message.ReadInt32(); break;
                            case 42: eos = message.ReadInt32(); break;
                            case 43: pad = message.ReadInt32(); break;
                            default: message.SkipLastField(); break;
                        }
                    break;
                default:
                    normalizerBytes = messageBytes;
                    while ((inner = message.ReadTag()) != 0)
                        switch (WireFormat.GetTagFieldNumber(inner))
                        {
                            case 1: normalizer = message.ReadString(); break;
                            case 2: charsmap = message.ReadBytes().ToByteArray(); break;
                            case 3: dummyPrefix = message.ReadBool(); break;
                            case 4: removeSpaces = message.ReadBool(); break;
                            case 5: escapeSpaces = message.ReadBool(); break;
                            default: message.SkipLastField(); break;
                        }
                    break;
            }
        }
        if (pieces.Count == 0) throw new InvalidCheckpointException(path, "pieces", "the SentencePiece model has no pieces");
        if (trainerBytes is null) throw new InvalidCheckpointException(path, "trainer_spec", "missing (the file is cut short or not a SentencePiece model)");
        if (normalizerBytes is null) throw new InvalidCheckpointException(path, "normalizer_spec", "missing (the file is cut short or not a SentencePiece model)");
        if (modelType != Bpe) throw new InvalidCheckpointException(path, "trainer_spec.model_type", $"{modelType} is not supported (expected 2, BPE, as Llama's tokenizer)", unsupported: true);
        foreach (int id in new[] { unk, bos, eos })
            if (id < -1 || id >= pieces.Count) throw new InvalidCheckpointException(path, "trainer_spec", $"special id {id} is outside the {pieces.Count} pieces");
        return new SentencePieceModel(pieces, modelType, byteFallback, unk, bos, eos, pad, normalizer, charsmap, dummyPrefix, removeSpaces, escapeSpaces)
        {
            TrainerSpecBytes = trainerBytes,
            NormalizerSpecBytes = normalizerBytes,
        };
    }

    /// <summary>The ModelProto bytes of these fields (what Microsoft.ML.Tokenizers loads).</summary>
    public byte[] ToBytes()
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        foreach (var p in Pieces)
            WriteMessage(output, 1, m =>
            {
                m.WriteTag(1, WireFormat.WireType.LengthDelimited); m.WriteString(p.Piece);
                m.WriteTag(2, WireFormat.WireType.Fixed32); m.WriteFloat(p.Score);
                m.WriteTag(3, WireFormat.WireType.Varint); m.WriteEnum(p.Type);
            });
        if (TrainerSpecBytes is { } trainer) WriteRaw(output, 2, trainer);
        else WriteMessage(output, 2, m =>
        {
            m.WriteTag(3, WireFormat.WireType.Varint); m.WriteEnum(ModelType);
            m.WriteTag(4, WireFormat.WireType.Varint); m.WriteInt32(Pieces.Count);
            m.WriteTag(35, WireFormat.WireType.Varint); m.WriteBool(ByteFallback);
            m.WriteTag(40, WireFormat.WireType.Varint); m.WriteInt32(UnknownId);
            m.WriteTag(41, WireFormat.WireType.Varint); m.WriteInt32(BosId);
            m.WriteTag(42, WireFormat.WireType.Varint); m.WriteInt32(EosId);
            m.WriteTag(43, WireFormat.WireType.Varint); m.WriteInt32(PadId);
        });
        if (NormalizerSpecBytes is { } normalizer) WriteRaw(output, 3, normalizer);
        else WriteMessage(output, 3, m =>
        {
            m.WriteTag(1, WireFormat.WireType.LengthDelimited); m.WriteString(NormalizerName);
            if (PrecompiledCharsmap.Length > 0) { m.WriteTag(2, WireFormat.WireType.LengthDelimited); m.WriteBytes(ByteString.CopyFrom(PrecompiledCharsmap)); }
            m.WriteTag(3, WireFormat.WireType.Varint); m.WriteBool(AddDummyPrefix);
            m.WriteTag(4, WireFormat.WireType.Varint); m.WriteBool(RemoveExtraWhitespaces);
            m.WriteTag(5, WireFormat.WireType.Varint); m.WriteBool(EscapeWhitespaces);
        });
        output.Flush();
        return stream.ToArray();
    }

    private static void WriteRaw(CodedOutputStream output, int field, byte[] message)
    {
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(message));
    }

    private static void WriteMessage(CodedOutputStream output, int field, Action<CodedOutputStream> write)
    {
        using var inner = new MemoryStream();
        var m = new CodedOutputStream(inner);
        write(m);
        m.Flush();
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(inner.ToArray()));
    }
}
