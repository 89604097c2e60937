using System.Globalization;
using System.Text;
using HymbaTools.Model;

namespace HymbaTools.Formats.Onnx;

/// <summary>The README.md written into an export directory: how to drive the graph from its names alone.</summary>
internal static class OnnxExportReadme
{
    public static string Create(HymbaConfig c, OnnxExportOptions options, IReadOnlyList<OnnxWeight> weights)
    {
        var inv = CultureInfo.InvariantCulture;
        var owners = string.Join(", ", c.KvOwners.Select(l => l.Index.ToString(inv)));
        var consumers = c.Layers.Where(l => !l.OwnsKv).Select(l => $"{l.Index}<-{l.KvSource}").ToList();
        var sliding = c.Layers.Where(l => l.Attention == AttentionKind.Sliding).Select(l => l.Index.ToString(inv)).ToList();
        var kinds = weights.GroupBy(w => w.Kind == OnnxWeightKind.NBits ? $"MatMulNBits {w.Bits}-bit" : w.Kind.ToString().ToLowerInvariant())
            .Select(g => $"{g.Key}: {g.Count()} tensors");
        var b = new StringBuilder();
        b.Append(inv, $"""
            # Hymba decoder for ONNX Runtime

            Exported by {Gguf.GgufExporter.ToolVersion} (`hymba export --format onnx --type {options.Type.ToString().ToLowerInvariant()}`), opset {options.Opset}.
            Weights: {string.Join("; ", kinds)}{(options.Type is OnnxExportType.Int4 or OnnxExportType.Int8 ? $", block size {options.BlockSize}" : "")}.
            `config.json` is the model's HuggingFace config; `genai_config.json` describes the graph in onnxruntime-genai's layout.

            ## Inputs and outputs

            | name | type | shape |
            |---|---|---|
            | `input_ids` | int64 | [batch, sequence] |
            | `attention_mask` | int64 | [batch, past_sequence + sequence], all ones |
            | `past_key_values.{"{i}"}.key` (layers {owners}) | float32 | [batch, {c.NumKvHeads}, past_i, {c.HeadDim}] |
            | `past_key_values.{"{i}"}.value` (same layers) | float32 | [batch, {c.NumKvHeads}, past_i, {c.VHeadDim}] |
            | `past_conv.{"{i}"}` (every layer 0..{c.NumLayers - 1}) | float32 | [batch, {c.DInner}, {c.ConvKernel - 1}] |
            | `past_ssm.{"{i}"}` (every layer) | float32 | [batch, {c.DInner}, {c.SsmStateSize}] |
            | `logits` (output) | float32 | [batch, sequence, {c.VocabSize}] |
            | `present.{"{i}"}.key` / `.value`, `present_conv.{"{i}"}`, `present_ssm.{"{i}"}` (outputs) | float32 | as the matching past |

            ## Driving it

            1. First call (prefill): `input_ids` = the prompt, `attention_mask` = ones of the prompt's length, every
               `past_key_values.*` with a zero-length third axis (past_i = 0), every `past_conv.*` and `past_ssm.*` all zeros.
               The graph recognises the first call by `attention_mask` being as long as `input_ids` and only then prepends
               the {c.NumMemoryTokens} meta tokens; they occupy positions 0..{c.NumMemoryTokens - 1} and the first text token has position {c.NumMemoryTokens}.
            2. Later calls (decode, any number of new tokens): `input_ids` = the new tokens, `attention_mask` = ones of length
               (all text tokens so far + new), and each `past_*` = the `present_*` output of the previous call.
               Text positions continue after the meta tokens.
            3. Batches: rows of equal length only. Left padding is not supported (the meta tokens and the SSM state would
               see the padding), so `attention_mask` must be all ones; batch rows of different lengths run separately.

            KV sharing: only KV-owning layers ({owners}) have K/V inputs and outputs; {(consumers.Count == 0 ? "no layer reuses another's K/V" : "consumers read their producer's cache (" + string.Join(", ", consumers) + ")")}.
            Sliding window: layers {(sliding.Count == 0 ? "none" : string.Join(", ", sliding))} attend to the meta tokens plus the last {c.SlidingWindow?.ToString(inv) ?? "-"} positions; the
            present K/V of a group whose layers all slide keeps only the meta tokens plus the last window of keys, so the cache
            stops growing. Global layers keep every key. Decoding through the state gives the same logits as one call over
            the whole sequence.

            Verify, generate and compare with HymbaTools: `hymba verify DIR`, `hymba generate DIR --prompt ...`,
            `hymba compare <checkpoint> DIR`.

            """);
        return b.ToString();
    }
}
