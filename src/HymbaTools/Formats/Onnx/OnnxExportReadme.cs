using System.Globalization;
using System.Text;
using HymbaTools.Model;

namespace HymbaTools.Formats.Onnx;

/// <summary>The README.md written into an export directory: how to run it with onnxruntime-genai, and how to drive the graph from its names alone.</summary>
internal static class OnnxExportReadme
{
    /// <summary>
    /// The genai loop in C#, as in the repository README: ReadmeCodeTests compile the block of both READMEs verbatim and
    /// run it on an export (and check that both are this text). genai's tokenizer starts with add_special_tokens off
    /// (onnxruntime-genai's Tokenizer constructor; no genai_config or tokenizer setting turns it on), so the loop
    /// turns it on to get hymba's ids, BOS first.
    /// </summary>
    public const string GenAiCSharpLoop = """
        using var model = new Model(exportDirectory);
        using var tokenizer = new Tokenizer(model);
        // genai encodes without special tokens unless told; with this, tokenizer_config.json's BOS rule applies (hymba's ids).
        tokenizer.UpdateOptions(new Dictionary<string, string> { ["add_special_tokens"] = "true" });
        using var sequences = tokenizer.Encode(prompt);
        using var options = new GeneratorParams(model);
        options.SetSearchOption("max_length", 200);
        using var generator = new Generator(model, options);
        generator.AppendTokenSequences(sequences);
        using var stream = tokenizer.CreateStream();
        var text = new StringBuilder();
        while (!generator.IsDone())
        {
            generator.GenerateNextToken();
            text.Append(stream.Decode(generator.GetNextTokens()[0]));
        }
        """;

    /// <summary>The same calls in Python (onnxruntime-genai's Python package; not run by the tests: no PyPI here; ReadmeCodeTests check that it makes the C# loop's calls in the same order).</summary>
    public const string GenAiPythonLoop = """
        import onnxruntime_genai as og

        model = og.Model(export_directory)
        tokenizer = og.Tokenizer(model)
        # genai encodes without special tokens unless told; with this, tokenizer_config.json's BOS rule applies (hymba's ids).
        tokenizer.update_options(add_special_tokens="true")
        sequences = tokenizer.encode(prompt)
        options = og.GeneratorParams(model)
        options.set_search_options(max_length=200)
        generator = og.Generator(model, options)
        generator.append_tokens(sequences)
        stream = tokenizer.create_stream()
        text = ""
        while not generator.is_done():
            generator.generate_next_token()
            text += stream.decode(generator.get_next_tokens()[0])
        """;

    /// <summary>Which runtimes load an export of each op set.</summary>
    private static string Runtimes(OnnxExportOptions options) => options.Ops == OnnxOps.Standard
        ? $"""
          Only ONNX-domain operators of opset {options.Opset} (`--ops standard`): any runtime that implements that opset loads it
          (ONNX Runtime and onnxruntime-genai too; there the default `--ops ort` export of the same model is the faster graph).
          N-bit weights are blocked DequantizeLinear + MatMul (opset 21), which ONNX Runtime fuses into MatMulNBits.
          """
        : """
          Loads in ONNX Runtime 1.31 or newer (and onnxruntime-genai 0.18, which runs on it) only: the graph uses ONNX Runtime's
          CPU contrib ops (com.microsoft: MatMulNBits, FusedMatMul, SkipSimplifiedLayerNormalization, RotaryEmbedding,
          CausalConvWithState; SimplifiedLayerNormalization, which ONNX Runtime registers in the ONNX domain), the fastest
          graph there. For other runtimes export with `--ops standard`.
          """;

    public static string Create(HymbaStateLayout state, OnnxExportOptions options, IReadOnlyList<OnnxWeight> weights)
    {
        var c = state.Config;
        var inv = CultureInfo.InvariantCulture;
        var owners = string.Join(", ", c.KvOwners.Select(l => l.Index.ToString(inv)));
        var consumers = c.Layers.Where(l => !l.OwnsKv).Select(l => $"{l.Index}<-{l.KvSource}").ToList();
        var sliding = c.Layers.Where(l => l.Attention == AttentionKind.Sliding).Select(l => l.Index.ToString(inv)).ToList();
        // An N-bit weight is MatMulNBits blocks, DequantizeLinear levels (standard ops), or, for an untied embedding only Gather
        // reads, packed rows in either.
        string NBitsForm(OnnxWeight w) => HymbaOnnxGraph.UsesDequantizeLayout(c, w.Tensor.Name, w.Kind, options.Ops) ? "DequantizeLinear"
            : options.Ops == OnnxOps.Standard ? "packed rows (Gather)" : "MatMulNBits";
        var kinds = weights.GroupBy(w => w.Kind == OnnxWeightKind.NBits ? $"{NBitsForm(w)} {w.Bits}-bit" : w.Kind.ToString().ToLowerInvariant())
            .Select(g => $"{g.Key}: {g.Count()} tensors");
        int width = state.EntryWidth;
        string kvType = state.KeyValueType == OnnxStateType.F16 ? "float16" : "float32";
        string entries = c.HeadDim == c.VHeadDim ? ""
            : $" Keys are {c.HeadDim} wide and values {c.VHeadDim}, but onnxruntime-genai gives a layer's key and value inputs one shape: each head's row of {c.HeadDim} key values then {c.VHeadDim} value values{((c.HeadDim + c.VHeadDim) % 2 == 1 ? " then one zero" : "")} is cut into two halves of {width}, the first stored in `.key`, the second in `.value` (no padding).";
        string bound = state.SlidingCacheKeys is { } most
            ? $"The presents of the sliding groups ({string.Join(", ", c.SlidingKvWindows.Keys.Order().Select(l => l.ToString(inv)))}) hold at most {most:N0} text keys (the window plus {HymbaStateLayout.SlidingSlack}): the graph drops older ones, as genai_config.json's `sliding_window` section tells genai; global layers keep every key."
            : "Every present is exactly past + new tokens.";
        var b = new StringBuilder();
        b.Append(inv, $"""
            # Hymba decoder for ONNX Runtime and onnxruntime-genai

            Exported by {Gguf.GgufExporter.ToolVersion} (`hymba export --format onnx --type {options.Type.ToString().ToLowerInvariant()} --ops {OnnxExporter.OpsName(options.Ops)}`), opset {options.Opset}.
            {Runtimes(options)}
            Weights: {string.Join("; ", kinds)}{(options.Type is OnnxExportType.Int4 or OnnxExportType.Int8 ? $", block size {options.BlockSize}" : "")}.

            Files: `model.onnx` (+ `model.onnx.data` for large models), `genai_config.json` (onnxruntime-genai's configuration),
            `hymba_export.json` (what genai's configuration has no words for: weight type, KV sharing, window, cache layout),
            `config.json` (the model's HuggingFace config), the tokenizer (`tokenizer.json` for genai, `tokenizer.model` for
            SentencePiece readers) and this README.

            ## Run it with onnxruntime-genai (C#, NuGet Microsoft.ML.OnnxRuntimeGenAI 0.18)

            ```csharp
            {GenAiCSharpLoop}
            ```

            The same calls in Python (package `onnxruntime-genai`):

            ```python
            {GenAiPythonLoop}
            ```

            Batch 1. genai holds the sliding groups' keys up to the window plus {HymbaStateLayout.SlidingSlack} and every key of global layers.

            ## Inputs and outputs (to drive the graph without genai)

            | name | type | shape |
            |---|---|---|
            | `input_ids` | int64 | [batch, sequence] |
            | `attention_mask` | int64 | [batch, text tokens so far + sequence], all ones |
            | `past_key_values.{"{i}"}.key` (layers {owners}) | {kvType} | [batch, {c.NumKvHeads}, past_i, {width}] |
            | `past_key_values.{"{i}"}.value` (same layers) | {kvType} | [batch, {c.NumKvHeads}, past_i, {width}] |
            | `past_key_values.{"{i}"}.conv_state` (every layer 0..{c.NumLayers - 1}) | float32 | [batch, {c.DInner}, {c.ConvKernel - 1}] |
            | `past_key_values.{"{i}"}.recurrent_state` (every layer) | float32 | [batch, {c.DInner}, {c.SsmStateSize}] |
            | `logits` (output) | float32 | [batch, sequence, {c.VocabSize}] |
            | `present.{"{i}"}.key` / `.value` / `.conv_state` / `.recurrent_state` (outputs) | as the past | as the matching past, but see below |

            1. First call: `input_ids` = the prompt, `attention_mask` = ones of the prompt's length, every key/value input with
               a zero-length third axis, every conv and recurrent state zeros (they are not read). The {c.NumMemoryTokens} meta
               tokens are part of the graph: their keys and values and the conv and SSM state after them are constants computed
               at export time, and a first call (attention_mask as long as input_ids) starts from them. The first text token
               has position {c.NumMemoryTokens}.
            2. Later calls (any number of new tokens): `input_ids` = the new tokens, `attention_mask` = ones of length (text
               tokens so far + new), each past = the matching present of the previous call. The state holds text tokens
               only. {bound}
            3. Batches: rows of equal length only; left padding is not supported (the SSM state would see the padding).

            KV sharing: only KV-owning layers ({owners}) have key/value inputs and outputs; {(consumers.Count == 0 ? "no layer reuses another's K/V" : "consumers read their producer's cache (" + string.Join(", ", consumers) + ")")}.{entries}
            K/V are {kvType}; conv and recurrent state float32 (16-bit recurrences would drift from one call over the whole text).
            Sliding window: layers {(sliding.Count == 0 ? "none" : string.Join(", ", sliding))} attend to the meta tokens plus the last {c.SlidingWindow?.ToString(inv) ?? "-"} text positions
            (the graph places the cached keys by the attention mask's length, so a client may also keep fewer, down to the
            window). Decoding through the state gives the same logits as one call over the whole sequence.

            Verify, generate and compare with HymbaTools: `hymba verify DIR`, `hymba generate DIR --prompt ...`,
            `hymba compare <checkpoint> DIR`.

            """);
        return b.ToString();
    }
}
