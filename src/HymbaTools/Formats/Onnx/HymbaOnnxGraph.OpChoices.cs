namespace HymbaTools.Formats.Onnx;

/// <summary>
/// Which operators build each of the graph's building blocks: one row per op set, one column per block (a table, so
/// that the parts of the model, <c>.Attention.cs</c> and <c>.Mamba.cs</c>, call the same Make* helpers whatever the
/// set). <see cref="OnnxOps.OnnxRuntime"/> is ONNX Runtime's fused CPU contrib ops (<c>.OnnxRuntimeOps.cs</c>);
/// <see cref="OnnxOps.Standard"/> only ONNX-domain ops of the chosen opset (<c>.StandardOps.cs</c>), with ONNX's own
/// RMSNormalization and RotaryEmbedding from opset 23 and their decompositions below it.
/// </summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <param name="Linear">x · Wᵀ (+ bias) for x [B, T, K] and one weight initializer; the output name when given</param>
    /// <param name="Gather">rows of an embedding table for ids [B, T]: [B, T, d] float32</param>
    /// <param name="RmsNorm">x / sqrt(mean(x²) + eps) · gain over the last axis</param>
    /// <param name="SkipRmsNorm">(RmsNorm(residual + delta), residual + delta)</param>
    /// <param name="Rope">rotate-half RoPE on [B, T, heads·d_h] at this call's positions</param>
    /// <param name="Scores">q·kᵀ / √d_h for queries [.., Tq, d] and keys [.., Tk, d] of the given rank (3: constants, 4: cache)</param>
    /// <param name="CausalConv">silu(depthwise causal conv of xᵀ [B, d_in, T] after the state [B, d_in, k-1]) and the next state (named)</param>
    private sealed record OpChoices(
        Func<string, OnnxInitializer, string?, string?, string> Linear,
        Func<string, string, string> Gather,
        Func<string, string, string> RmsNorm,
        Func<string, string, string, (string Normalized, string Sum)> SkipRmsNorm,
        Func<string, int, string> Rope,
        Func<string, string, int, string> Scores,
        Func<string, string, string, string, string, (string Output, string State)> CausalConv);

    private OpChoices ChooseOps() => _options.Ops switch
    {
        OnnxOps.OnnxRuntime => new(MatMulNBitsOrFusedMatMul, GatherPackedBlocks, SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization,
            RotaryEmbeddingContrib, FusedMatMulScores, CausalConvWithState),
        OnnxOps.Standard => new(DequantizeOrTransposeMatMul, GatherDequantized,
            _options.Opset >= 23 ? RmsNormalization23 : RmsNormDecomposed, AddThenRmsNorm,
            _options.Opset >= 23 ? RotaryEmbedding23 : RopeDecomposed, MatMulScores, ConvWithConcatenatedState),
        _ => throw new ArgumentOutOfRangeException(nameof(_options), _options.Ops, "op set"),
    };

    /// <summary>The lowest opset a choice needs (what `export --ops standard` checks before it starts).</summary>
    public static long MinimumOpset(OnnxOps ops, OnnxExportType type) =>
        ops == OnnxOps.Standard && type is OnnxExportType.Int4 or OnnxExportType.Int8 ? 21 : 17;   // blocked DequantizeLinear, int4: opset 21
}
