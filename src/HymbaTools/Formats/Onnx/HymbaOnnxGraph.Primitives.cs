using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>The graph's building blocks (linear layers fused or not, embedding gathers, RMSNorms, attention scores, the causal conv, shapes), each built by the op set's choice (<see cref="OpChoices"/>).</summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <summary>
    /// x · Wᵀ for x [B, T, K] and a stored weight [N, K], built by the op set's Linear. A weight fused with others (<see cref="OnnxInitializers"/>) runs once for all of
    /// them on this input and is split; each member's output is returned as it is asked for.
    /// </summary>
    /// <param name="output">name of the result, for a graph output (unfused weights only)</param>
    /// <param name="bias">a [N] bias added by the kernel (MatMulNBits takes it as an input)</param>
    private string MakeLinear(string x, string weight, string? output = null, string? bias = null)
    {
        var initializer = _initializerOf[weight];
        if (!initializer.IsFused) return _ops.Linear(x, initializer, output, bias);
        string key = initializer.Name + "@" + x;
        if (!_linearOutputs.ContainsKey(key + "#" + weight))
        {
            var all = _ops.Linear(x, initializer, null, null);
            var sizes = _g.Int64s([.. initializer.Members.Select(m => m.Tensor.Rows)]);
            var parts = _g.Ops("Split", [all, sizes], initializer.Members.Count, [Int("axis", -1)]);
            for (int i = 0; i < parts.Length; i++) _linearOutputs[key + "#" + initializer.Members[i].Tensor.Name] = parts[i];
        }
        return _linearOutputs[key + "#" + weight];
    }

    /// <summary>Rows of an embedding table for ids [B, T]: [B, T, d] float32.</summary>
    private string MakeGather(string table, string ids) => _ops.Gather(table, ids);

    private string MakeRmsNorm(string x, string gain) => _ops.RmsNorm(x, gain);

    /// <summary>The residual add and the RMSNorm after it; returns (normalised, residual + delta).</summary>
    private (string Normalized, string Sum) MakeSkipRmsNorm(string residual, string delta, string gain) => _ops.SkipRmsNorm(residual, delta, gain);

    /// <summary>Attention scores q·kᵀ / √d_h; <paramref name="keyRank"/> 3 for the meta tokens' constant keys [H_kv, M, d], 4 for a cache.</summary>
    private string MakeScores(string queries, string keys, int keyRank = 4) => _ops.Scores(queries, keys, keyRank);

    /// <summary>silu(depthwise causal conv) of xᵀ [B, d_in, T] with kernel [d_in, 1, k] and bias after the state [B, d_in, k-1]; the next state gets the name <paramref name="presentState"/>.</summary>
    private (string Output, string State) MakeCausalConv(string transposedInput, string kernel, string bias, string state, string presentState) =>
        _ops.CausalConv(transposedInput, kernel, bias, state, presentState);

    /// <summary>float32 values of a float initializer (a float16 one cast once).</summary>
    private string FloatWeight(OnnxInitializer w)
    {
        if (w.Kind == OnnxWeightKind.Float32) return w.Name;
        if (!_castWeights.TryGetValue(w.Name, out var cast))
            _castWeights[w.Name] = cast = _g.Op("Cast", [w.Name], [Int("to", (long)DataType.Float)]);
        return cast;
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
