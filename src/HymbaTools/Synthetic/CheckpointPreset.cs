using System.Text.Json.Nodes;

namespace HymbaTools.Synthetic;

/// <summary>
/// Shapes of a Hymba model for `hymba init`. Everything else in config.json is filled in as the real
/// Hymba-1.5B-Base file has it, so a generated checkpoint has exactly the real key set.
/// </summary>
public sealed record CheckpointPreset(
    string Name, string Description,
    int Layers, int Hidden, int Heads, int KvHeads, int Intermediate, int Vocab,
    int MetaTokens, int? Window, int[] GlobalLayers, int[][] KvReuseGroups,
    int DState, int DConv, int Expand, int MaxPositions, int OrigMaxPositions, int SeqLength, bool TieEmbeddings)
{
    public static IReadOnlyList<CheckpointPreset> All { get; } =
    [
        new("tiny", "4 layers, d=64, GQA 2, 8 meta tokens, window 8, KV group [1,2] (like fixture tiny-a)",
            4, 64, 4, 2, 160, 512, 8, 8, [0, 3], [[1, 2]], 8, 4, 2, 256, 64, 128, true),
        new("small", "8 layers, d=128, GQA 4, 16 meta tokens, window 32, KV groups [1,2,3],[5,6], untied head",
            8, 128, 8, 2, 352, 2048, 16, 32, [0, 4, 7], [[1, 2, 3], [5, 6]], 16, 4, 2, 1024, 256, 512, false),
        new("medium", "12 layers, d=384, GQA 3, 32 meta tokens, window 256 (benchmark scale, ~40M parameters)",
            12, 384, 6, 2, 1024, 8192, 32, 256, [0, 6, 11], [[1, 2], [3, 4], [7, 8], [9, 10]], 16, 4, 2, 4096, 1024, 2048, true),
        new("example", "the trained example model: 6 layers, d=192, GQA 3, 16 meta tokens, window 64, KV groups [1,2],[3,4] (vocab set by the tokenizer)",
            6, 192, 6, 2, 512, 4001, 16, 64, [0, 5], [[1, 2], [3, 4]], 16, 4, 2, 1024, 256, 512, true),
        new("1.5b", "the real Hymba-1.5B shapes: 32 layers, d=1600, 25/5 heads, 128 meta tokens, window 1024",
            32, 1600, 25, 5, 5504, 32001, 128, 1024, [0, 15, 31],
            [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14], [16, 17, 18], [19, 20], [21, 22], [23, 24], [25, 26], [27, 28], [29, 30]],
            16, 4, 2, 8192, 2048, 8192, true),
    ];

    public static CheckpointPreset? Find(string name) => All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The same widths with another number of layers, laid out as Hymba-1.5B is: the first, middle (L/2 - 1) and
    /// last layers global, the others in KV-sharing groups of adjacent layers, pairs with one triple leading a run
    /// of odd length (for 32 layers this is exactly the 1.5b preset's layout). For showing how costs scale with depth.
    /// </summary>
    public CheckpointPreset WithLayers(int layers)
    {
        var (globals, groups) = HymbaLayerLayout(layers);
        return this with { Name = $"{Name}-{layers}l", Description = $"{Description}; {layers} layers", Layers = layers, GlobalLayers = globals, KvReuseGroups = groups };
    }

    /// <summary>Global layers and KV-reuse groups of <see cref="WithLayers"/>.</summary>
    internal static (int[] GlobalLayers, int[][] KvReuseGroups) HymbaLayerLayout(int layers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        var globals = new[] { 0, layers / 2 - 1, layers - 1 }.Where(g => g >= 0).Distinct().Order().ToArray();
        var groups = new List<int[]>();
        int start = 0;
        foreach (int boundary in globals.Append(layers))
        {
            int length = boundary - start;   // the run of sliding layers [start, boundary)
            int at = start;
            if (length % 2 == 1 && length >= 3) { groups.Add([at, at + 1, at + 2]); at += 3; }
            for (; at + 1 < boundary; at += 2) groups.Add([at, at + 1]);
            start = boundary + 1;
        }
        return (globals, [.. groups]);
    }

    /// <summary>config.json content with the key set of the real Hymba-1.5B-Base config.</summary>
    public JsonObject ToConfigJson(string torchDtype)
    {
        int dInner = Expand * Hidden;
        var convDim = new JsonObject();
        for (int i = 0; i < Layers; i++) convDim[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = dInner;
        var layerType = new JsonArray();
        for (int i = 0; i < Layers; i++) layerType.Add("h");
        return new JsonObject
        {
            ["architectures"] = new JsonArray("HymbaForCausalLM"),
            ["attention_dropout"] = 0.0,
            ["attn_hidden_size"] = -1,
            ["attn_implementation"] = "flex",
            ["attn_implementation_new"] = "flex",
            ["auto_map"] = new JsonObject
            {
                ["AutoConfig"] = "configuration_hymba.HymbaConfig",
                ["AutoModelForCausalLM"] = "modeling_hymba.HymbaForCausalLM",
            },
            ["bos_token_id"] = 1,
            ["calc_logits_for_entire_prompt"] = false,
            ["conv_dim"] = convDim,
            ["eos_token_id"] = 2,
            ["global_attn_idx"] = new JsonArray(GlobalLayers.Select(g => (JsonNode)g).ToArray()),
            ["hidden_act"] = "silu",
            ["hidden_size"] = Hidden,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = Intermediate,
            ["kq_head_dim"] = -1,
            ["kq_norm"] = "none",
            ["kv_reuse_every_i_layer"] = -1,
            ["kv_reuse_group"] = new JsonArray(KvReuseGroups.Select(g => (JsonNode)new JsonArray(g.Select(x => (JsonNode)x).ToArray())).ToArray()),
            ["kv_weight_reuse"] = false,
            ["layer_type"] = layerType,
            ["mamba_conv_bias"] = true,
            ["mamba_d_conv"] = DConv,
            ["mamba_d_state"] = DState,
            ["mamba_dt_rank"] = (Hidden + 15) / 16,
            ["mamba_expand"] = Expand,
            ["mamba_inner_layernorms"] = true,
            ["mamba_proj_bias"] = false,
            ["max_position_embeddings"] = MaxPositions,
            ["memory_tokens_interspersed_every"] = 0,
            ["mlp_hidden_act"] = "silu",
            ["model_type"] = "hymba",
            ["num_attention_heads"] = Heads,
            ["num_experts"] = 1,
            ["num_experts_per_tok"] = 1,
            ["num_hidden_layers"] = Layers,
            ["num_key_value_heads"] = KvHeads,
            ["num_mamba"] = 1,
            ["num_memory_tokens"] = MetaTokens,
            ["orig_max_position_embeddings"] = OrigMaxPositions,
            ["output_router_logits"] = false,
            ["pad_token_id"] = 0,
            ["rms_norm_eps"] = 1e-6,
            ["rope"] = true,
            ["rope_theta"] = 10000.0,
            ["rope_type"] = "ntk",
            ["router_aux_loss_coef"] = 0.001,
            ["seq_length"] = SeqLength,
            ["sliding_window"] = Window,
            ["tie_word_embeddings"] = TieEmbeddings,
            ["torch_dtype"] = torchDtype,
            ["transformers_version"] = "4.44.0",
            ["use_cache"] = false,
            ["use_mamba_kernels"] = true,
            ["v_head_dim"] = dInner / Heads,
            ["vocab_size"] = Vocab,
        };
    }
}
