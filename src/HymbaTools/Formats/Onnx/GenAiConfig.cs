using System.Text.Json.Nodes;
using HymbaTools.Model;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// genai_config.json in the layout of onnxruntime-genai (model.decoder with head and layer sizes, input and
/// output name patterns, sliding_window, search defaults), plus a "hymba" section for what that layout has no
/// words for: the conv and SSM state, the meta tokens and the KV-sharing groups.
/// </summary>
internal static class GenAiConfig
{
    public static JsonObject Create(HymbaConfig c, OnnxExportOptions options)
    {
        var owners = c.KvOwners.Select(l => l.Index).ToList();
        var sliding = c.Layers.Where(l => l.Attention == AttentionKind.Sliding).Select(l => l.Index).ToList();
        var decoder = new JsonObject
        {
            ["filename"] = HymbaOnnxNames.ModelFile,
            ["head_size"] = c.HeadDim,
            ["hidden_size"] = c.HiddenSize,
            ["num_attention_heads"] = c.NumHeads,
            ["num_hidden_layers"] = c.NumLayers,
            ["num_key_value_heads"] = c.NumKvHeads,
            ["session_options"] = new JsonObject { ["log_id"] = "hymba", ["provider_options"] = new JsonArray() },
            ["inputs"] = new JsonObject
            {
                ["input_ids"] = HymbaOnnxNames.InputIds,
                ["attention_mask"] = HymbaOnnxNames.AttentionMask,
                ["past_key_names"] = HymbaOnnxNames.PastKeyPattern,
                ["past_value_names"] = HymbaOnnxNames.PastValuePattern,
                ["past_conv_names"] = HymbaOnnxNames.PastConvPattern,
                ["past_ssm_names"] = HymbaOnnxNames.PastSsmPattern,
            },
            ["outputs"] = new JsonObject
            {
                ["logits"] = HymbaOnnxNames.Logits,
                ["present_key_names"] = HymbaOnnxNames.PresentKeyPattern,
                ["present_value_names"] = HymbaOnnxNames.PresentValuePattern,
                ["present_conv_names"] = HymbaOnnxNames.PresentConvPattern,
                ["present_ssm_names"] = HymbaOnnxNames.PresentSsmPattern,
            },
        };
        if (c.SlidingWindow is { } window && sliding.Count > 0)
            decoder["sliding_window"] = new JsonObject
            {
                ["window_size"] = window,
                ["layers"] = new JsonArray(sliding.Select(i => (JsonNode)i).ToArray()),
                ["slide_key_value_cache"] = true,
            };
        return new JsonObject
        {
            ["model"] = new JsonObject
            {
                ["type"] = "hymba",
                ["bos_token_id"] = c.BosTokenId,
                ["eos_token_id"] = c.EosTokenId,
                ["pad_token_id"] = c.PadTokenId,
                ["vocab_size"] = c.VocabSize,
                ["context_length"] = c.MaxPositionEmbeddings,
                ["decoder"] = decoder,
            },
            ["search"] = new JsonObject
            {
                ["max_length"] = c.MaxPositionEmbeddings,
                ["do_sample"] = false,
                ["num_beams"] = 1,
                ["past_present_share_buffer"] = false,
                ["top_k"] = 1,
                ["top_p"] = 1.0,
                ["temperature"] = 1.0,
            },
            ["hymba"] = new JsonObject
            {
                ["weight_type"] = options.Type.ToString().ToLowerInvariant(),
                ["block_size"] = options.Type is OnnxExportType.Int4 or OnnxExportType.Int8 ? options.BlockSize : null,
                ["accuracy_level"] = options.Type is OnnxExportType.Int4 or OnnxExportType.Int8 ? options.AccuracyLevel : null,
                ["num_meta_tokens"] = c.NumMemoryTokens,
                ["meta_tokens_prepended_when"] = "the past is empty (attention_mask as long as input_ids)",
                ["kv_owner_layers"] = new JsonArray(owners.Select(i => (JsonNode)i).ToArray()),
                ["kv_source"] = new JsonArray(c.Layers.Select(l => (JsonNode)l.KvSource).ToArray()),
                ["global_layers"] = new JsonArray(c.Layers.Where(l => l.Attention == AttentionKind.Global).Select(l => (JsonNode)l.Index).ToArray()),
                ["conv_state_shape"] = new JsonArray("batch", c.DInner, c.ConvKernel - 1),
                ["ssm_state_shape"] = new JsonArray("batch", c.DInner, c.SsmStateSize),
                ["key_shape"] = new JsonArray("batch", c.NumKvHeads, "past_sequence", c.HeadDim),
                ["value_shape"] = new JsonArray("batch", c.NumKvHeads, "past_sequence", c.VHeadDim),
                ["left_padding_supported"] = false,
            },
        };
    }
}
