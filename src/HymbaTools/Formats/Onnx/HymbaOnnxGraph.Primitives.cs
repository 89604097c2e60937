using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>The graph's building blocks: linear layers (fused or not), embedding gathers, RMSNorms, shapes.</summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <summary>
    /// x · Wᵀ for x [B, T, K] and a stored weight [N, K]: MatMulNBits blocks, or float32/float16 through FusedMatMul
    /// (Wᵀ without a transposed copy). A weight fused with others (<see cref="OnnxInitializers"/>) runs once for all of
    /// them on this input and is split; each member's output is returned as it is asked for.
    /// </summary>
    /// <param name="output">name of the result, for a graph output (unfused weights only)</param>
    /// <param name="bias">a [N] bias added by the kernel (MatMulNBits takes it as an input)</param>
    private string MakeLinear(string x, string weight, string? output = null, string? bias = null)
    {
        var initializer = _initializerOf[weight];
        if (!initializer.IsFused) return LinearNode(x, initializer, output, bias);
        string key = initializer.Name + "@" + x;
        if (!_linearOutputs.ContainsKey(key + "#" + weight))
        {
            var all = LinearNode(x, initializer, null, null);
            var sizes = _g.Int64s([.. initializer.Members.Select(m => m.Tensor.Rows)]);
            var parts = _g.Ops("Split", [all, sizes], initializer.Members.Count, [Int("axis", -1)]);
            for (int i = 0; i < parts.Length; i++) _linearOutputs[key + "#" + initializer.Members[i].Tensor.Name] = parts[i];
        }
        return _linearOutputs[key + "#" + weight];
    }

    private string LinearNode(string x, OnnxInitializer w, string? output, string? bias)
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

    private string FloatWeight(OnnxInitializer w)
    {
        if (w.Kind == OnnxWeightKind.Float32) return w.Name;
        if (!_castWeights.TryGetValue(w.Name, out var cast))
            _castWeights[w.Name] = cast = _g.Op("Cast", [w.Name], [Int("to", (long)DataType.Float)]);
        return cast;
    }

    /// <summary>Rows of an embedding table for ids [B, T]: [B, T, d] float32, dequantizing N-bit blocks after the gather.</summary>
    private string MakeGather(string table, string ids)
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

    /// <summary>x / sqrt(mean(x²) + eps) · gain over the last axis in float32: ONNX Runtime's SimplifiedLayerNormalization.</summary>
    private string MakeRmsNorm(string x, string gain) =>
        _g.Op("SimplifiedLayerNormalization", [x, gain], [Int("axis", -1), FloatAttribute("epsilon", (float)_c.RmsNormEps), Int("stash_type", 1)]);

    /// <summary>The residual add and the RMSNorm after it in one kernel; returns (normalised, residual + delta).</summary>
    private (string Normalized, string Sum) MakeSkipRmsNorm(string residual, string delta, string gain)
    {
        var outputs = _g.Ops("SkipSimplifiedLayerNormalization", [residual, delta, gain], 4, [FloatAttribute("epsilon", (float)_c.RmsNormEps)],
            [_g.Fresh("skip_norm"), "", "", _g.Fresh("residual")], OnnxConstants.MicrosoftDomain);
        return (outputs[0], outputs[3]);
    }

    private string Silu(string x) => _g.Op("Mul", [x, _g.Op("Sigmoid", [x])]);

    private string Unsqueeze(string x, long axis) => _g.Op("Unsqueeze", [x, _g.Int64s(axis)]);

    private string UInt8(byte value)
    {
        var name = $"const_u8_{value}";
        if (!_g.Graph.Initializer.Any(t => t.Name == name)) _g.Graph.Initializer.Add(RawTensor(name, [], DataType.Uint8, [value]));
        return name;
    }

    /// <summary>A 1-D int64 shape from dynamic [1] values (strings) and fixed sizes (numbers), built once per distinct shape.</summary>
    private string Shape(params object[] parts)
    {
        string key = string.Join(",", parts);
        if (_shapes.TryGetValue(key, out var cached)) return cached;
        var inputs = parts.Select(p => p switch { string s => s, int v => _g.Int64s(v), long v => _g.Int64s(v), _ => throw new ArgumentException("shape part") }).ToArray();
        return _shapes[key] = _g.Op("Concat", inputs, [Int("axis", 0)]);
    }

    /// <summary>x (rank 4) with zeros before and after its last axis's values, or x itself.</summary>
    private string PadColumns(string x, int before, int after) =>
        before == 0 && after == 0 ? x : _g.Op("Pad", [x, _g.Int64s(0, 0, 0, before, 0, 0, 0, after)]);
}
