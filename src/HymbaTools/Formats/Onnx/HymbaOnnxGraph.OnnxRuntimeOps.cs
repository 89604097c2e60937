using HymbaTools.Formats.Onnx.Protos;
using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// The building blocks from ONNX Runtime's fused CPU contrib ops (<see cref="OnnxOps.OnnxRuntime"/>, the default):
/// MatMulNBits, FusedMatMul, (Skip)SimplifiedLayerNormalization, RotaryEmbedding, CausalConvWithState. Few, fused
/// nodes, because at batch 1 a node's dispatch costs about as much as its arithmetic (README "How the pieces were
/// chosen"). Only ONNX Runtime loads a graph built from them.
/// </summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <summary>MatMulNBits blocks (the bias inside the kernel), or float32/float16 through FusedMatMul (Wᵀ without a transposed copy).</summary>
    private string MatMulNBitsOrFusedMatMul(string x, OnnxInitializer w, string? output, string? bias)
    {
        if (w.Kind != OnnxWeightKind.NBits)
        {
            var product = _g.Op("FusedMatMul", [x, FloatWeight(w)], [Int("transB", 1)], bias is null ? output : null, OnnxConstants.MicrosoftDomain);
            return bias is null ? product : _g.Op("Add", [product, bias], output: output);
        }
        string[] inputs = bias is null ? [x, BlocksName(w.Name), ScalesName(w.Name)] : [x, BlocksName(w.Name), ScalesName(w.Name), "", "", bias];
        return _g.Op("MatMulNBits", inputs,
            [Int("K", w.Columns), Int("N", w.Rows), Int("bits", w.Bits), Int("block_size", _options.BlockSize), Int("accuracy_level", _options.AccuracyLevel)],
            output, OnnxConstants.MicrosoftDomain);
    }

    /// <summary>Rows of an embedding table, dequantizing MatMulNBits blocks after the gather (the tied head's blocks serve both).</summary>
    private string GatherPackedBlocks(string table, string ids)
    {
        var w = _weights[table];
        if (w.Kind == OnnxWeightKind.Float32) return _g.Op("Gather", [table, ids]);
        if (w.Kind == OnnxWeightKind.Float16) return _g.Op("Cast", [_g.Op("Gather", [table, ids])], [Int("to", (long)DataType.Float)]);

        long columns = w.Tensor.Columns, blocks = (columns + _options.BlockSize - 1) / _options.BlockSize;
        var packed = _g.Op("Gather", [BlocksName(table), ids]);                                            // [B, T, blocks, blob] uint8
        string levels;
        if (w.Bits == 8) levels = packed;
        else
        {
            // Two 4-bit values per byte, the even element in the low nibble.
            var high = _g.Op("BitShift", [packed, UInt8(4)], [String("direction", "RIGHT")]);
            var low = _g.Op("Sub", [packed, _g.Op("BitShift", [high, UInt8(4)], [String("direction", "LEFT")])]);
            levels = _g.Op("Concat", [Unsqueeze(low, -1), Unsqueeze(high, -1)], [Int("axis", -1)]);
        }
        var values = _g.Op("Reshape", [_g.Op("Cast", [levels], [Int("to", (long)DataType.Float)]), Shape(_batch, _newTokens, blocks, _options.BlockSize)]);
        var scales = _g.Op("Gather", [_g.Op("Reshape", [ScalesName(table), _g.Int64s(w.Tensor.Rows, blocks)]), ids]); // [B, T, blocks]
        var dequantized = _g.Op("Mul", [_g.Op("Sub", [values, _g.Float(1 << (w.Bits - 1))]), Unsqueeze(scales, -1)]);
        var rows = _g.Op("Reshape", [dequantized, Shape(_batch, _newTokens, blocks * _options.BlockSize)]);
        return blocks * _options.BlockSize == columns ? rows : _g.Op("Slice", [rows, _g.Int64s(0), _g.Int64s(columns), _g.Int64s(2)]);
    }

    /// <summary>ONNX Runtime's SimplifiedLayerNormalization (registered by ONNX Runtime in the ONNX domain; not an ONNX op), float32 statistics.</summary>
    private string SimplifiedLayerNormalization(string x, string gain) =>
        _g.Op("SimplifiedLayerNormalization", [x, gain], [Int("axis", -1), FloatAttribute("epsilon", (float)_c.RmsNormEps), Int("stash_type", 1)]);

    /// <summary>The residual add and the RMSNorm after it in one kernel.</summary>
    private (string Normalized, string Sum) SkipSimplifiedLayerNormalization(string residual, string delta, string gain)
    {
        var outputs = _g.Ops("SkipSimplifiedLayerNormalization", [residual, delta, gain], 4, [FloatAttribute("epsilon", (float)_c.RmsNormEps)],
            [_g.Fresh("skip_norm"), "", "", _g.Fresh("residual")], OnnxConstants.MicrosoftDomain);
        return (outputs[0], outputs[3]);
    }

    /// <summary>com.microsoft.RotaryEmbedding on [B, T, heads·d_h] from this call's first position.</summary>
    private string RotaryEmbeddingContrib(string x, int heads)
    {
        var (cos, sin) = RopeTables();
        return _g.Op("RotaryEmbedding", [x, _startPosition, cos, sin], [Int("interleaved", 0), Int("num_heads", heads)], domain: OnnxConstants.MicrosoftDomain);
    }

    /// <summary>FusedMatMul with kᵀ and the 1/√d_h scale inside the kernel.</summary>
    private string FusedMatMulScores(string queries, string keys, int keyRank) =>
        _g.Op("FusedMatMul", [queries, keys], [Int("transB", 1), ScoreScale("alpha")], domain: OnnxConstants.MicrosoftDomain);

    /// <summary>CausalConvWithState with its SiLU (2.5x faster than k shifted multiply-adds for one step, equal at 512 at 1.5B).</summary>
    private (string Output, string State) CausalConvWithState(string transposedInput, string kernel, string bias, string state, string presentState)
    {
        var conv = _g.Ops("CausalConvWithState", [transposedInput, kernel, bias, state], 2, [String("activation", "silu")],
            [_g.Fresh("conv"), presentState], OnnxConstants.MicrosoftDomain);
        return (conv[0], conv[1]);
    }

    private AttributeProto ScoreScale(string name) => FloatAttribute(name, (float)(1.0 / Math.Sqrt(_c.HeadDim)));
}
