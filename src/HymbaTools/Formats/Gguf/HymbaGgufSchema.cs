using System.Text.Json.Nodes;
using HymbaTools.Model;

namespace HymbaTools.Formats.Gguf;

/// <summary>
/// The hymba.* metadata keys: written from a <see cref="HymbaConfig"/> and read back into a config.json
/// object, so a GGUF file rebuilds the model without config.json. Every key is documented in
/// schemas/hymba-gguf.md and schemas/hymba-gguf.schema.json (a test keeps the three in sync).
/// </summary>
internal static class HymbaGgufSchema
{
    public const string Architecture = "hymba";
    private const string A = Architecture + ".";

    public const string BlockCount = A + "block_count";
    public const string EmbeddingLength = A + "embedding_length";
    public const string FeedForwardLength = A + "feed_forward_length";
    public const string ContextLength = A + "context_length";
    public const string VocabSize = A + "vocab_size";
    public const string HeadCount = A + "attention.head_count";
    public const string HeadCountKv = A + "attention.head_count_kv";
    public const string KeyLength = A + "attention.key_length";
    public const string ValueLength = A + "attention.value_length";
    public const string RmsEpsilon = A + "attention.layer_norm_rms_epsilon";
    public const string SlidingWindow = A + "attention.sliding_window";
    public const string SlidingWindowPattern = A + "attention.sliding_window_pattern";
    public const string KvSource = A + "attention.kv_source";
    public const string RopeEnabled = A + "rope.enabled";
    public const string RopeDimensionCount = A + "rope.dimension_count";
    public const string RopeFreqBase = A + "rope.freq_base";
    public const string RopeScalingType = A + "rope.scaling.type";
    public const string RopeOriginalContext = A + "rope.scaling.original_context_length";
    public const string MetaTokenCount = A + "meta_token_count";
    public const string SsmInnerSize = A + "ssm.inner_size";
    public const string SsmStateSize = A + "ssm.state_size";
    public const string SsmConvKernel = A + "ssm.conv_kernel";
    public const string SsmTimeStepRank = A + "ssm.time_step_rank";
    public const string SsmConvBias = A + "ssm.conv_bias";
    public const string SsmInnerNorms = A + "ssm.dt_b_c_rms";
    public const string TiedEmbeddings = A + "tie_word_embeddings";
    public const string BosTokenId = "tokenizer.ggml.bos_token_id";
    public const string EosTokenId = "tokenizer.ggml.eos_token_id";
    public const string PadTokenId = "tokenizer.ggml.padding_token_id";

    /// <summary>Every hymba.* key this tool writes (the schema documents exactly these).</summary>
    public static readonly string[] AllKeys =
    [
        BlockCount, EmbeddingLength, FeedForwardLength, ContextLength, VocabSize, HeadCount, HeadCountKv, KeyLength, ValueLength,
        RmsEpsilon, SlidingWindow, SlidingWindowPattern, KvSource, RopeEnabled, RopeDimensionCount, RopeFreqBase, RopeScalingType,
        RopeOriginalContext, MetaTokenCount, SsmInnerSize, SsmStateSize, SsmConvKernel, SsmTimeStepRank, SsmConvBias, SsmInnerNorms, TiedEmbeddings,
    ];

    public static void WriteMetadata(GgufWriter w, HymbaConfig c)
    {
        w.Add(BlockCount, GgufValue.U32((uint)c.NumLayers));
        w.Add(EmbeddingLength, GgufValue.U32((uint)c.HiddenSize));
        w.Add(FeedForwardLength, GgufValue.U32((uint)c.IntermediateSize));
        w.Add(ContextLength, GgufValue.U32((uint)c.MaxPositionEmbeddings));
        w.Add(VocabSize, GgufValue.U32((uint)c.VocabSize));
        w.Add(HeadCount, GgufValue.U32((uint)c.NumHeads));
        w.Add(HeadCountKv, GgufValue.U32((uint)c.NumKvHeads));
        w.Add(KeyLength, GgufValue.U32((uint)c.HeadDim));
        w.Add(ValueLength, GgufValue.U32((uint)c.VHeadDim));
        w.Add(RmsEpsilon, GgufValue.F32((float)c.RmsNormEps));
        w.Add(SlidingWindow, GgufValue.U32((uint)(c.SlidingWindow ?? 0)));
        w.Add(SlidingWindowPattern, GgufValue.Bools(c.Layers.Select(l => l.Attention == AttentionKind.Sliding)));
        w.Add(KvSource, GgufValue.Int32s(c.Layers.Select(l => l.KvSource)));
        w.Add(RopeEnabled, GgufValue.Bool(c.Rope));
        w.Add(RopeDimensionCount, GgufValue.U32((uint)c.HeadDim));
        w.Add(RopeFreqBase, GgufValue.F32((float)c.RopeTheta));
        w.Add(RopeScalingType, GgufValue.Str(c.RopeType));
        w.Add(RopeOriginalContext, GgufValue.U32((uint)(c.OrigMaxPositionEmbeddings ?? 0)));
        w.Add(MetaTokenCount, GgufValue.U32((uint)c.NumMemoryTokens));
        w.Add(SsmInnerSize, GgufValue.U32((uint)c.DInner));
        w.Add(SsmStateSize, GgufValue.U32((uint)c.SsmStateSize));
        w.Add(SsmConvKernel, GgufValue.U32((uint)c.ConvKernel));
        w.Add(SsmTimeStepRank, GgufValue.U32((uint)c.DtRank));
        w.Add(SsmConvBias, GgufValue.Bool(c.ConvBias));
        w.Add(SsmInnerNorms, GgufValue.Bool(c.InnerLayerNorms));
        w.Add(TiedEmbeddings, GgufValue.Bool(c.TieWordEmbeddings));
    }

    /// <summary>
    /// Rebuilds config.json content from the metadata. Global layers are the ones whose pattern entry is
    /// false; KV-reuse groups are rebuilt from kv_source (producer first, then its consumers).
    /// </summary>
    public static JsonObject ToConfigJson(GgufFile f)
    {
        string arch = f.Get(Gguf.GgufConstants.ArchitectureKey).AsString;
        if (arch != Architecture) throw new InvalidGgufException(f.Path, GgufConstants.ArchitectureKey, $"is \"{arch}\", expected \"{Architecture}\"", unsupported: true);
        int U(string key) => checked((int)f.Get(key).AsInteger);
        int layers = U(BlockCount), hidden = U(EmbeddingLength), heads = U(HeadCount);
        int dInner = U(SsmInnerSize);
        if (hidden <= 0 || dInner % hidden != 0) throw new InvalidGgufException(f.Path, SsmInnerSize, $"{dInner} is not a multiple of {EmbeddingLength} {hidden}");
        var pattern = f.Get(SlidingWindowPattern).Elements.Select(e => e.AsBool).ToArray();
        var source = f.Get(KvSource).Elements.Select(e => checked((int)e.AsInteger)).ToArray();
        if (pattern.Length != layers) throw new InvalidGgufException(f.Path, SlidingWindowPattern, $"has {pattern.Length} entries, expected {layers}");
        if (source.Length != layers) throw new InvalidGgufException(f.Path, KvSource, $"has {source.Length} entries, expected {layers}");
        int window = U(SlidingWindow);
        var groups = new JsonArray();
        foreach (var producer in Enumerable.Range(0, layers).Where(i => source[i] == i))
        {
            var consumers = Enumerable.Range(0, layers).Where(i => i != producer && source[i] == producer).ToList();
            if (consumers.Count > 0) groups.Add(new JsonArray(new[] { producer }.Concat(consumers).Select(x => (JsonNode)x).ToArray()));
        }
        var convDim = new JsonObject();
        for (int i = 0; i < layers; i++) convDim[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = dInner;
        var layerType = new JsonArray(Enumerable.Range(0, layers).Select(_ => (JsonNode)"h").ToArray());
        int origContext = U(RopeOriginalContext);
        return new JsonObject
        {
            ["architectures"] = new JsonArray("HymbaForCausalLM"),
            ["model_type"] = "hymba",
            ["vocab_size"] = U(VocabSize),
            ["hidden_size"] = hidden,
            ["intermediate_size"] = U(FeedForwardLength),
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = U(HeadCountKv),
            ["attn_hidden_size"] = -1,
            ["kq_head_dim"] = -1,
            ["v_head_dim"] = U(ValueLength),
            ["kq_norm"] = "none",
            ["rope"] = f.Get(RopeEnabled).AsBool,
            ["rope_type"] = f.Get(RopeScalingType).AsString,
            ["rope_theta"] = f.Get(RopeFreqBase).AsDouble,
            ["max_position_embeddings"] = U(ContextLength),
            ["orig_max_position_embeddings"] = origContext == 0 ? null : origContext,
            ["sliding_window"] = window == 0 ? null : window,
            ["global_attn_idx"] = new JsonArray(Enumerable.Range(0, layers).Where(i => !pattern[i]).Select(i => (JsonNode)i).ToArray()),
            ["num_memory_tokens"] = U(MetaTokenCount),
            ["memory_tokens_interspersed_every"] = 0,
            ["kv_reuse_group"] = groups.Count == 0 ? null : groups,
            ["kv_reuse_every_i_layer"] = -1,
            ["layer_type"] = layerType,
            ["conv_dim"] = convDim,
            ["mamba_d_state"] = U(SsmStateSize),
            ["mamba_d_conv"] = U(SsmConvKernel),
            ["mamba_expand"] = dInner / hidden,
            ["mamba_dt_rank"] = U(SsmTimeStepRank),
            ["mamba_conv_bias"] = f.Get(SsmConvBias).AsBool,
            ["mamba_proj_bias"] = false,
            ["mamba_inner_layernorms"] = f.Get(SsmInnerNorms).AsBool,
            ["num_mamba"] = 1,
            ["hidden_act"] = "silu",
            ["mlp_hidden_act"] = "silu",
            ["num_experts"] = 1,
            ["rms_norm_eps"] = f.Get(RmsEpsilon).AsDouble,
            ["tie_word_embeddings"] = f.Get(TiedEmbeddings).AsBool,
            ["bos_token_id"] = f.TryGet(BosTokenId, out var bos) ? (int)bos.AsInteger : 1,
            ["eos_token_id"] = f.TryGet(EosTokenId, out var eos) ? (int)eos.AsInteger : 2,
            ["pad_token_id"] = f.TryGet(PadTokenId, out var pad) ? (int)pad.AsInteger : 0,
        };
    }
}
