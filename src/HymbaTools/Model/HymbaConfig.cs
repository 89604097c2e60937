using System.Text.Json;
using System.Text.Json.Nodes;
using HymbaTools.Common;

namespace HymbaTools.Model;

/// <summary>
/// The typed Hymba configuration read from a HuggingFace <c>config.json</c> (docs/architecture.md §1.2),
/// with derived dimensions and the per-layer plan. Every field that changes the math is required: the
/// class defaults of configuration_hymba.py are not the 1.5B values, so nothing is assumed.
/// </summary>
public sealed class HymbaConfig
{
    private HymbaConfig() { }

    public string SourcePath { get; private init; } = "";
    /// <summary>The parsed JSON, kept so that writers can round-trip keys this class does not model.</summary>
    public JsonObject Json { get; private init; } = new();

    public string ModelType { get; private init; } = "";
    public string? Architecture { get; private init; }
    public string? TorchDtype { get; private init; }

    public int VocabSize { get; private init; }
    public int HiddenSize { get; private init; }
    public int IntermediateSize { get; private init; }
    public int NumLayers { get; private init; }
    public int NumHeads { get; private init; }
    public int NumKvHeads { get; private init; }
    public double RmsNormEps { get; private init; }
    public bool TieWordEmbeddings { get; private init; }

    public bool Rope { get; private init; }
    public string RopeType { get; private init; } = "default";
    public double RopeTheta { get; private init; }
    public int MaxPositionEmbeddings { get; private init; }
    public int? OrigMaxPositionEmbeddings { get; private init; }

    public int? SlidingWindow { get; private init; }
    public IReadOnlyList<int> GlobalAttnIdx { get; private init; } = [];
    public int NumMemoryTokens { get; private init; }
    public IReadOnlyList<IReadOnlyList<int>>? KvReuseGroups { get; private init; }
    public int KvReuseEveryILayer { get; private init; }

    public int SsmStateSize { get; private init; }
    public int ConvKernel { get; private init; }
    public int MambaExpand { get; private init; }
    public int DtRank { get; private init; }
    public bool DtRankIsAuto { get; private init; }
    public bool ConvBias { get; private init; }
    public bool ProjBias { get; private init; }
    public bool InnerLayerNorms { get; private init; }

    public int BosTokenId { get; private init; }
    public int EosTokenId { get; private init; }
    public int PadTokenId { get; private init; }

    // ---- derived (docs/architecture.md §1.1) ----
    /// <summary>Q/K head dimension d/H.</summary>
    public int HeadDim => HiddenSize / NumHeads;
    /// <summary>Mamba inner width d_in = expand * d (also the attention output width).</summary>
    public int DInner => MambaExpand * HiddenSize;
    /// <summary>V head dimension d_in/H (the code overwrites v_head_dim with this).</summary>
    public int VHeadDim => DInner / NumHeads;
    public int QWidth => HiddenSize;
    public int KWidth => NumKvHeads * HeadDim;
    public int VWidth => NumKvHeads * VHeadDim;
    public int GqaGroupSize => NumHeads / NumKvHeads;

    /// <summary>Static NTK-scaled RoPE base (doc section 3.4), or rope_theta for the default type.</summary>
    public double RopeBase => RopeType == "ntk"
        ? RopeTheta * Math.Pow(2.0 * MaxPositionEmbeddings / OrigMaxPositionEmbeddings!.Value - 1.0, HeadDim / (HeadDim - 2.0))
        : RopeTheta;

    public IReadOnlyList<LayerPlan> Layers { get; private set; } = [];

    public static HymbaConfig Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidConfigException(path, "", "config.json is missing");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new InvalidConfigException(path, "", $"cannot read ({e.Message})"); }
        return Parse(bytes, path);
    }

    public static HymbaConfig Parse(byte[] utf8Json, string sourcePath)
    {
        var obj = JsonInput.ObjectTree(utf8Json, 32, problem => new InvalidConfigException(sourcePath, problem.StartsWith("is a JSON", StringComparison.Ordinal) ? "$" : "", problem));
        using var doc = JsonInput.Document(utf8Json, 32, problem => new InvalidConfigException(sourcePath, "", problem));
        return FromJson(new JsonFieldReader(sourcePath, doc.RootElement), obj);
    }

    private static HymbaConfig FromJson(JsonFieldReader r, JsonObject json)
    {
        string modelType = r.String("model_type");
        if (modelType != "hymba") throw r.Error("model_type", $"is \"{modelType}\", expected \"hymba\"", unsupported: true);
        string? architecture = null;
        if (r.Has("architectures"))
        {
            var archs = r.StringArray("architectures");
            architecture = archs.FirstOrDefault();
            if (architecture is not null && architecture != "HymbaForCausalLM")
                throw r.Error("architectures[0]", $"is \"{architecture}\", expected \"HymbaForCausalLM\"", unsupported: true);
        }

        int hidden = r.Int("hidden_size", 1);
        int heads = r.Int("num_attention_heads", 1);
        int kvHeads = r.Int("num_key_value_heads", 1);
        int layers = r.Int("num_hidden_layers", 1);
        int expand = r.Int("mamba_expand", 1);
        if (hidden % heads != 0) throw r.Error("num_attention_heads", $"{heads} does not divide hidden_size {hidden}");
        if (heads % kvHeads != 0) throw r.Error("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}");
        if (expand * hidden % heads != 0) throw r.Error("num_attention_heads", $"{heads} does not divide the Mamba inner width {expand * hidden}");

        // Fields the official code reads but only accepts in one form; other values are refused, not ignored.
        RequireIfPresent(r, "attn_hidden_size", v => v == -1 || v == hidden, $"-1 or hidden_size ({hidden})");
        RequireIfPresent(r, "kq_head_dim", v => v == -1 || v == hidden / heads, $"-1 or hidden_size/num_attention_heads ({hidden / heads})");
        if (r.Has("kq_norm") && !r.IsNull("kq_norm") && r.String("kq_norm") != "none")
            throw r.Error("kq_norm", $"is \"{r.String("kq_norm")}\"; only \"none\" is supported", unsupported: true);
        RequireIfPresent(r, "memory_tokens_interspersed_every", v => v == 0, "0 (interspersed meta tokens are not supported)");
        RequireIfPresent(r, "num_mamba", v => v == 1, "1");
        RequireIfPresent(r, "num_experts", v => v == 1, "1 (mixture-of-experts MLPs are not supported)");
        foreach (var act in new[] { "hidden_act", "mlp_hidden_act" })
            if (r.Has(act) && r.String(act) != "silu") throw r.Error(act, $"is \"{r.String(act)}\"; only \"silu\" is supported", unsupported: true);
        if (r.Has("layer_type"))
        {
            var types = r.StringArray("layer_type");
            if (types.Length != layers) throw r.Error("layer_type", $"has {types.Length} entries, expected num_hidden_layers = {layers}");
            int bad = Array.FindIndex(types, t => t != "h");
            if (bad >= 0) throw r.Error($"layer_type[{bad}]", $"is \"{types[bad]}\"; only hybrid layers (\"h\") are supported", unsupported: true);
        }

        bool rope = r.Bool("rope");
        string ropeType = "default";
        double ropeTheta = 10000;
        int maxPos = r.Int("max_position_embeddings", 1);
        int? origMaxPos = r.Has("orig_max_position_embeddings") && !r.IsNull("orig_max_position_embeddings") ? r.Int("orig_max_position_embeddings", 1) : null;
        if (rope)
        {
            ropeType = r.IsNull("rope_type") ? "default" : r.String("rope_type");
            ropeTheta = r.Double("rope_theta");
            if (ropeType != "ntk" && ropeType != "default")
                throw r.Error("rope_type", $"is \"{ropeType}\"; supported: \"ntk\", \"default\"", unsupported: true);
            if (ropeType == "ntk" && origMaxPos is null) throw r.Error("orig_max_position_embeddings", "required field is missing (rope_type \"ntk\" needs it)");
            if (hidden / heads <= 2) throw r.Error("num_attention_heads", "head dim must be > 2 for RoPE");
        }

        int? window = r.IsNull("sliding_window") ? null : r.Int("sliding_window", 1);
        int[] globals = window is null ? [] : r.IntArray("global_attn_idx");
        foreach (int g in globals)
            if (g < 0 || g >= layers) throw r.Error("global_attn_idx", $"contains {g}, expected layer indices 0..{layers - 1}");

        int[][]? groups = r.Has("kv_reuse_group") && !r.IsNull("kv_reuse_group") ? r.IntArrayArray("kv_reuse_group") : null;
        int everyI = r.IntOr("kv_reuse_every_i_layer", -1);

        int dtRank;
        bool dtAuto = false;
        var dtElement = r.Required("mamba_dt_rank");
        if (dtElement.ValueKind == JsonValueKind.String && dtElement.GetString() == "auto") { dtRank = (hidden + 15) / 16; dtAuto = true; }
        else dtRank = r.Int("mamba_dt_rank", 1);

        int dInner = expand * hidden;
        if (r.Has("conv_dim") && r.Required("conv_dim").ValueKind == JsonValueKind.Object)
        {
            foreach (var p in r.Required("conv_dim").EnumerateObject())
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int cd) || cd != dInner)
                    throw r.Error($"conv_dim.{p.Name}", $"is {p.Value.GetRawText()}, expected mamba_expand * hidden_size = {dInner}");
        }

        var config = new HymbaConfig
        {
            SourcePath = r.FilePath,
            Json = json,
            ModelType = modelType,
            Architecture = architecture,
            TorchDtype = r.StringOrNull("torch_dtype"),
            VocabSize = r.Int("vocab_size", 1),
            HiddenSize = hidden,
            IntermediateSize = r.Int("intermediate_size", 1),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            RmsNormEps = r.Double("rms_norm_eps"),
            TieWordEmbeddings = r.Bool("tie_word_embeddings"),
            Rope = rope,
            RopeType = ropeType,
            RopeTheta = ropeTheta,
            MaxPositionEmbeddings = maxPos,
            OrigMaxPositionEmbeddings = origMaxPos,
            SlidingWindow = window,
            GlobalAttnIdx = globals,
            NumMemoryTokens = r.Int("num_memory_tokens", 0),
            KvReuseGroups = groups?.Select(g => (IReadOnlyList<int>)g).ToArray(),
            KvReuseEveryILayer = everyI,
            SsmStateSize = r.Int("mamba_d_state", 1),
            ConvKernel = r.Int("mamba_d_conv", 1),
            MambaExpand = expand,
            DtRank = dtRank,
            DtRankIsAuto = dtAuto,
            ConvBias = r.Bool("mamba_conv_bias"),
            ProjBias = r.Bool("mamba_proj_bias"),
            InnerLayerNorms = r.Bool("mamba_inner_layernorms"),
            BosTokenId = r.IntOr("bos_token_id", 1),
            EosTokenId = r.IntOr("eos_token_id", 2),
            PadTokenId = r.IntOr("pad_token_id", 0),
        };
        config.Layers = BuildLayers(config, r);
        return config;
    }

    private static void RequireIfPresent(JsonFieldReader r, string name, Func<int, bool> ok, string expected)
    {
        if (!r.Has(name) || r.IsNull(name)) return;
        int v = r.Int(name);
        if (!ok(v)) throw r.Error(name, $"is {v}, expected {expected}", unsupported: true);
    }

    /// <summary>
    /// The per-layer plan. KV sources follow the official model: with kv_reuse_group, the first index of
    /// a group produces K/V and the rest consume it; otherwise with kv_reuse_every_i_layer = k &gt; 0 layer i
    /// reuses the K/V of layer i - (i mod k). Layer kinds: global if sliding_window is null or i is in
    /// global_attn_idx, sliding otherwise.
    /// </summary>
    private static LayerPlan[] BuildLayers(HymbaConfig c, JsonFieldReader r)
    {
        var source = Enumerable.Range(0, c.NumLayers).ToArray();
        if (c.KvReuseGroups is { } groups)
        {
            var seen = new Dictionary<int, int>();
            for (int g = 0; g < groups.Count; g++)
            {
                var group = groups[g];
                if (group.Count < 2) throw r.Error($"kv_reuse_group[{g}]", $"has {group.Count} layer(s), expected a producer and at least one consumer");
                for (int j = 0; j < group.Count; j++)
                {
                    int layer = group[j];
                    if (layer < 0 || layer >= c.NumLayers) throw r.Error($"kv_reuse_group[{g}][{j}]", $"is {layer}, expected a layer index 0..{c.NumLayers - 1}");
                    if (seen.TryGetValue(layer, out int other)) throw r.Error($"kv_reuse_group[{g}][{j}]", $"layer {layer} is already in group {other}");
                    seen[layer] = g;
                    if (j > 0)
                    {
                        if (layer <= group[0]) throw r.Error($"kv_reuse_group[{g}][{j}]", $"consumer {layer} comes before its producer {group[0]}; the producer must be an earlier layer");
                        source[layer] = group[0];
                    }
                }
            }
        }
        else if (c.KvReuseEveryILayer > 0)
        {
            for (int i = 0; i < c.NumLayers; i++) source[i] = i - i % c.KvReuseEveryILayer;
        }

        var globals = new HashSet<int>(c.GlobalAttnIdx);
        var plans = new LayerPlan[c.NumLayers];
        for (int i = 0; i < c.NumLayers; i++)
        {
            bool global = c.SlidingWindow is null || globals.Contains(i);
            bool owns = source[i] == i;
            plans[i] = new LayerPlan(i, global ? AttentionKind.Global : AttentionKind.Sliding, global ? null : c.SlidingWindow, source[i],
                InProjLayout.Create(c.QWidth, c.KWidth, c.VWidth, c.DInner, owns));
        }
        return plans;
    }

    /// <summary>Layers whose K/V a runtime must cache (one per KV-reuse group plus every non-sharing layer).</summary>
    public IEnumerable<LayerPlan> KvOwners => Layers.Where(l => l.OwnsKv);

    /// <summary>
    /// KV owners whose every reader slides, with the widest window among those readers: the caches a decoder may
    /// bound (one global reader keeps a group's cache whole).
    /// </summary>
    public IReadOnlyDictionary<int, int> SlidingKvWindows => KvOwners
        .Select(owner => (owner.Index, Readers: Layers.Where(l => l.KvSource == owner.Index).ToList()))
        .Where(g => g.Readers.All(l => l.Attention == AttentionKind.Sliding && l.Window is not null))
        .ToDictionary(g => g.Index, g => g.Readers.Max(l => l.Window!.Value));
}
