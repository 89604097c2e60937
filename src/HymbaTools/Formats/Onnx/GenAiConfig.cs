using System.Text.Json.Nodes;
using HymbaTools.Model;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// genai_config.json as onnxruntime-genai reads it: a "decoder" model whose K/V layers it finds by scanning the graph's
/// inputs with the key/value name templates, and whose conv and recurrent state (the Mamba heads) it finds the same
/// way. Only keys genai knows are written (it rejects unknown ones); everything Hymba-specific is in
/// hymba_export.json (<see cref="ExportInfo"/>). The sliding_window section (window_size, the layers whose cache slides,
/// cache_slack; no sliding of inputs or of the whole cache) makes genai's default cache hold window + slack keys for
/// those layers, which is the present the graph returns for them; global layers keep every key.
/// </summary>
internal static class GenAiConfig
{
    public static JsonObject Create(HymbaStateLayout state, GenerationConfig generation)
    {
        var c = state.Config;
        var decoder = new JsonObject
        {
            ["filename"] = HymbaOnnxNames.ModelFile,
            ["head_size"] = state.EntryWidth,
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
                ["past_recurrent_names"] = HymbaOnnxNames.PastSsmPattern,
            },
            ["outputs"] = new JsonObject
            {
                ["logits"] = HymbaOnnxNames.Logits,
                ["present_key_names"] = HymbaOnnxNames.PresentKeyPattern,
                ["present_value_names"] = HymbaOnnxNames.PresentValuePattern,
                ["present_conv_names"] = HymbaOnnxNames.PresentConvPattern,
                ["present_recurrent_names"] = HymbaOnnxNames.PresentSsmPattern,
            },
        };
        if (state.SlidingCacheKeys is { } keys)
            decoder["sliding_window"] = new JsonObject
            {
                ["window_size"] = keys - HymbaStateLayout.SlidingSlack,
                ["cache_slack"] = HymbaStateLayout.SlidingSlack,
                ["slide_key_value_cache"] = false,
                ["slide_inputs"] = false,
                ["layers"] = new JsonArray([.. c.SlidingKvWindows.Keys.Order().Select(l => (JsonNode)l)]),
            };
        var eos = generation.EosTokenIds.Count > 0 ? generation.EosTokenIds : [c.EosTokenId];
        return new JsonObject
        {
            ["model"] = new JsonObject
            {
                ["type"] = "decoder",
                ["bos_token_id"] = generation.BosTokenId ?? c.BosTokenId,
                ["eos_token_id"] = eos.Count == 1 ? eos[0] : new JsonArray([.. eos.Select(id => (JsonNode)id)]),
                ["pad_token_id"] = generation.PadTokenId ?? c.PadTokenId,
                ["vocab_size"] = c.VocabSize,
                ["context_length"] = c.MaxPositionEmbeddings,
                ["decoder"] = decoder,
            },
            // HuggingFace's defaults where generation_config.json is silent (genai's own differ: top_k 50 is the same).
            ["search"] = new JsonObject
            {
                ["max_length"] = Math.Min(generation.MaxLength ?? c.MaxPositionEmbeddings, c.MaxPositionEmbeddings),
                ["do_sample"] = generation.DoSample ?? false,
                ["num_beams"] = 1,
                ["past_present_share_buffer"] = false,
                ["temperature"] = generation.Temperature ?? 1.0,
                ["top_k"] = generation.TopK ?? 50,
                ["top_p"] = generation.TopP ?? 1.0,
                ["repetition_penalty"] = generation.RepetitionPenalty ?? 1.0,
            },
        };
    }
}
