using System.Text.Json.Nodes;
using HymbaTools.Model;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// hymba_export.json: what genai_config.json has no words for. The weights (type, MatMulNBits block size and
/// accuracy level) and the decoding state's layout: which layers own K/V and which read whose, the cache head width
/// and how K and V fill it, the window of the sliding layers, and that the meta tokens live in the graph.
/// </summary>
internal static class ExportInfo
{
    /// <summary>
    /// 3: K‖V rows halved into the key and value entries, float16 K/V by default, sliding groups bounded by the graph
    /// (2: K/V zero-padded to one width, float32, hymba 0.3; 1: meta tokens in the cache, hymba 0.2).
    /// </summary>
    public const int LayoutVersion = 3;

    public static JsonObject Create(HymbaStateLayout state, OnnxExportOptions options)
    {
        var c = state.Config;
        bool nbits = options.Type is OnnxExportType.Int4 or OnnxExportType.Int8;
        static JsonArray Numbers(IEnumerable<int> values) => new([.. values.Select(v => (JsonNode)v)]);
        return new JsonObject
        {
            ["layout_version"] = LayoutVersion,
            ["weight_type"] = options.Type.ToString().ToLowerInvariant(),
            ["preset"] = OnnxPrecision.PresetOf(options.Type),
            ["block_size"] = nbits ? options.BlockSize : null,
            ["accuracy_level"] = nbits ? options.AccuracyLevel : null,
            ["meta_tokens"] = new JsonObject
            {
                ["count"] = c.NumMemoryTokens,
                ["where"] = "constants of the graph: their K/V and the conv/SSM state after them; the state inputs hold text tokens only",
            },
            ["cache"] = new JsonObject
            {
                ["key_value_dtype"] = state.KeyValueType == OnnxStateType.F16 ? "float16" : "float32",
                ["head_size"] = state.EntryWidth,
                ["key_head_size"] = c.HeadDim,
                ["value_head_size"] = c.VHeadDim,
                ["entries"] = $"each head's row K ({c.HeadDim}) then V ({c.VHeadDim}){((c.HeadDim + c.VHeadDim) % 2 == 1 ? " then one zero" : "")} is cut in two halves of head_size: the first is the key entry, the second the value entry",
                ["kv_owner_layers"] = Numbers(c.KvOwners.Select(l => l.Index)),
                ["kv_source"] = Numbers(c.Layers.Select(l => l.KvSource)),
                ["global_layers"] = Numbers(c.Layers.Where(l => l.Attention == AttentionKind.Global).Select(l => l.Index)),
                ["sliding_window"] = c.SlidingWindow,
                ["sliding_cache_keys"] = state.SlidingCacheKeys,
                ["sliding_layers"] = Numbers(c.Layers.Where(l => l.Attention == AttentionKind.Sliding).Select(l => l.Index)),
                ["conv_state_shape"] = new JsonArray("batch", c.DInner, c.ConvKernel - 1),
                ["conv_and_recurrent_dtype"] = "float32",
                ["recurrent_state_shape"] = new JsonArray("batch", c.DInner, c.SsmStateSize),
                ["left_padding_supported"] = false,
            },
        };
    }
}
