using HymbaTools.Formats.Onnx.Protos;
using HymbaTools.Model;
using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>Options of the graph itself (not of the weights).</summary>
internal sealed record HymbaGraphOptions(long Opset, int BlockSize, int AccuracyLevel);

/// <summary>
/// The Hymba decoder as one ONNX graph for prefill and decode (docs/architecture.md and the export README
/// this tool writes): one Make* function per part, each adding nodes for the math of the reference forward
/// pass (<see cref="HymbaModel"/>) in the same operation order. The parts live in files of their own:
/// this one (inputs, embedding, layer, head, linear layers, norms), <c>.Attention.cs</c> and <c>.Mamba.cs</c>.
/// <para>
/// Decoding state in onnxruntime-genai's layout: K/V of KV-owning layers (consumers read their producer's),
/// the last k-1 pre-conv inputs and the SSM state of every layer. The meta tokens are not in the state: their
/// keys and values and the conv and SSM state after them are constants of the graph (computed at export time,
/// <see cref="MetaTokenState"/>), so every present is exactly past + new tokens and attention_mask covers text
/// tokens only. A first call (past length 0) starts the conv and SSM recurrences from the meta-token state
/// whatever its state inputs hold (genai passes zeros). Text positions continue after the meta tokens. Sliding
/// layers mask keys older than the window; the caller decides whether to drop them from the cache.
/// </para>
/// </summary>
internal sealed partial class HymbaOnnxGraph
{
    private readonly OnnxGraphBuilder _g;
    private readonly HymbaConfig _c;
    private readonly Dictionary<string, OnnxWeight> _weights;
    private readonly HymbaGraphOptions _options;
    private readonly Dictionary<string, string> _castWeights = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _shapes = new(StringComparer.Ordinal);
    private readonly Dictionary<int, (string Keys, string Values, string Positions)> _kv = [];
    private readonly Dictionary<(int Owner, AttentionKind Kind, int? Window), string> _masks = [];

    // Values every layer uses, all 1-D [1] int64 unless noted.
    private string _batch = "", _newTokens = "", _endPosition = "";
    private string _firstCall = "";           // [1] bool: no text was processed before this call
    private string _positions = "";           // [T] int64, absolute positions of this call's tokens (after the meta tokens)
    private (string Cos, string Sin)? _rope;  // [T, d_h] float

    private HymbaOnnxGraph(OnnxGraphBuilder g, HymbaConfig c, IReadOnlyList<OnnxWeight> weights, HymbaGraphOptions options)
    {
        _g = g;
        _c = c;
        _weights = weights.ToDictionary(w => w.Tensor.Name, StringComparer.Ordinal);
        _options = options;
    }

    private bool HasMetaTokens => _c.NumMemoryTokens > 0;

    /// <summary>Name of the uint8 block data and the scales of an N-bit weight.</summary>
    public static string BlocksName(string weight) => weight + ".blocks";
    public static string ScalesName(string weight) => weight + ".scales";

    public static GraphProto Build(HymbaConfig config, IReadOnlyList<OnnxWeight> weights, HymbaGraphOptions options)
    {
        var g = new OnnxGraphBuilder("hymba", options.Opset);
        new HymbaOnnxGraph(g, config, weights, options).MakeDecoder();
        return g.Graph;
    }

    private static string W(StoredRole role, int layer = -1) => HymbaStorageLayout.NameOf(role, layer);

    private void MakeDecoder()
    {
        var c = _c;
        MakeInputsAndOutputs();
        var x = MakeEmbedding();
        var hidden = _g.Op("Reshape", [x, _g.Int64s(-1, c.HiddenSize)]);
        foreach (var layer in c.Layers) hidden = MakeLayer(layer, hidden);
        MakeHead(hidden);
    }

    private void MakeInputsAndOutputs()
    {
        var c = _c;
        _g.Input(HymbaOnnxNames.InputIds, DataType.Int64, "batch", "sequence");
        _g.Input(HymbaOnnxNames.AttentionMask, DataType.Int64, "batch", "total_sequence");
        _g.Output(HymbaOnnxNames.Logits, DataType.Float, "batch", "sequence", (long)c.VocabSize);
        foreach (var state in HymbaOnnxNames.States(c))
        {
            _g.Input(state.Past, DataType.Float, Dims(state, "past_sequence"));
            _g.Output(state.Present, DataType.Float, Dims(state, "present_sequence"));
        }
        static object[] Dims(StateTensor state, string sequence) =>
            state.Shape.Select(d => d switch { -1 => "batch", -2 => (object)$"{sequence}.{state.Layer}", _ => d }).ToArray();
    }

    /// <summary>
    /// Token embeddings [B, T, d]; sets the per-call values: batch, new tokens, whether this is the first call, the
    /// absolute positions (text starts at M, after the meta tokens) and the RoPE tables.
    /// </summary>
    private string MakeEmbedding()
    {
        var c = _c;
        long m = c.NumMemoryTokens;
        var idsShape = _g.Op("Shape", [HymbaOnnxNames.InputIds]);
        _batch = _g.Op("Gather", [idsShape, _g.Int64s(0)]);
        _newTokens = _g.Op("Gather", [idsShape, _g.Int64s(1)]);
        var totalText = _g.Op("Gather", [_g.Op("Shape", [HymbaOnnxNames.AttentionMask]), _g.Int64s(1)]);
        if (HasMetaTokens) _firstCall = _g.Op("Equal", [totalText, _newTokens]);
        _endPosition = _g.Op("Add", [totalText, _g.Int64s(m)]);
        var start = _g.Op("Sub", [_endPosition, _newTokens]);
        _positions = _g.Op("Range", [_g.Op("Squeeze", [start]), _g.Op("Squeeze", [_endPosition]), _g.Int64Scalar(1)]);
        if (c.Rope) _rope = MakeRopeTables();
        return MakeGather(W(StoredRole.TokenEmbedding), HymbaOnnxNames.InputIds);
    }

    /// <summary>cos and sin [T, d_h] of float32 angles position x inv_freq (the reference's precision).</summary>
    private (string Cos, string Sin) MakeRopeTables()
    {
        var inv = RotaryEmbedding.InverseFrequencies(_c);
        var invFreq = _g.Floats("rope.inv_freq", [inv.Length], inv);
        var positions = _g.Op("Cast", [_positions], [Int("to", (long)DataType.Float)]);
        var freqs = _g.Op("Mul", [Unsqueeze(positions, 1), invFreq]);
        var angles = _g.Op("Concat", [freqs, freqs], [Int("axis", 1)]);
        return (_g.Op("Cos", [angles]), _g.Op("Sin", [angles]));
    }

    private string MakeLayer(LayerPlan plan, string x)
    {
        int i = plan.Index;
        var h = MakeRmsNorm(x, W(StoredRole.AttnNorm, i));
        var attention = MakeAttention(plan, h);
        var ssm = MakeMamba(plan, h);
        var fused = _g.Op("Mul", [_g.Op("Add", [MakeRmsNorm(attention, W(StoredRole.AttnOutNorm, i)), MakeRmsNorm(ssm, W(StoredRole.SsmOutNorm, i))]), _g.Float(0.5f)]);
        x = _g.Op("Add", [x, MakeLinear(fused, W(StoredRole.MixerOut, i))]);
        var m = MakeRmsNorm(x, W(StoredRole.FfnNorm, i));
        var hidden = _g.Op("Mul", [Silu(MakeLinear(m, W(StoredRole.FfnGate, i))), MakeLinear(m, W(StoredRole.FfnUp, i))]);
        return _g.Op("Add", [x, MakeLinear(hidden, W(StoredRole.FfnDown, i))]);
    }

    private void MakeHead(string hidden)
    {
        var c = _c;
        var normalized = MakeRmsNorm(hidden, W(StoredRole.OutputNorm));
        var head = c.TieWordEmbeddings ? W(StoredRole.TokenEmbedding) : W(StoredRole.Output);
        _g.Op("Reshape", [MakeLinear(normalized, head), Shape(_batch, _newTokens, c.VocabSize)], output: HymbaOnnxNames.Logits);
    }

    /// <summary>x · Wᵀ for x [rows, K] and a weight [N, K] stored as float32, float16 or MatMulNBits blocks.</summary>
    private string MakeLinear(string x, string weight)
    {
        var w = _weights[weight];
        if (w.Kind != OnnxWeightKind.NBits) return _g.Op("Gemm", [x, FloatWeight(w)], [Int("transB", 1)]);
        return _g.Op("MatMulNBits", [x, BlocksName(weight), ScalesName(weight)],
            [Int("K", w.Tensor.Columns), Int("N", w.Tensor.Rows), Int("bits", w.Bits), Int("block_size", _options.BlockSize), Int("accuracy_level", _options.AccuracyLevel)],
            domain: OnnxConstants.MicrosoftDomain);
    }

    /// <summary>Rows of an embedding table for ids [B, S]: [B, S, d] float32, dequantizing N-bit blocks after the gather.</summary>
    private string MakeGather(string table, string ids)
    {
        var w = _weights[table];
        if (w.Kind == OnnxWeightKind.Float32) return _g.Op("Gather", [table, ids]);
        if (w.Kind == OnnxWeightKind.Float16) return _g.Op("Cast", [_g.Op("Gather", [table, ids])], [Int("to", (long)DataType.Float)]);

        long columns = w.Tensor.Columns, blocks = (columns + _options.BlockSize - 1) / _options.BlockSize;
        var packed = _g.Op("Gather", [BlocksName(table), ids]);                                            // [B, S, blocks, blob] uint8
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
        var scales = _g.Op("Gather", [_g.Op("Reshape", [ScalesName(table), _g.Int64s(w.Tensor.Rows, blocks)]), ids]); // [B, S, blocks]
        var dequantized = _g.Op("Mul", [_g.Op("Sub", [values, _g.Float(1 << (w.Bits - 1))]), Unsqueeze(scales, -1)]);
        var rows = _g.Op("Reshape", [dequantized, Shape(_batch, _newTokens, blocks * _options.BlockSize)]);
        return blocks * _options.BlockSize == columns ? rows : _g.Op("Slice", [rows, _g.Int64s(0), _g.Int64s(columns), _g.Int64s(2)]);
    }

    private string FloatWeight(OnnxWeight w)
    {
        string name = w.Tensor.Name;
        if (w.Kind == OnnxWeightKind.Float32) return name;
        if (!_castWeights.TryGetValue(name, out var cast))
            _castWeights[name] = cast = _g.Op("Cast", [name], [Int("to", (long)DataType.Float)]);
        return cast;
    }

    /// <summary>
    /// x / sqrt(mean(x²) + eps) * gain over the last axis, in float32. Written as Pow -> ReduceMean -> Add ->
    /// Sqrt -> Div -> Mul, the pattern ONNX Runtime fuses into one SimplifiedLayerNormalization kernel
    /// (seven norms a layer: as separate nodes they cost more than their arithmetic at decode).
    /// </summary>
    private string MakeRmsNorm(string x, string gain)
    {
        var square = _g.Op("Pow", [x, _g.Float(2f)]);
        var mean = _g.Opset >= 18
            ? _g.Op("ReduceMean", [square, _g.Int64s(-1)], [Int("keepdims", 1)])
            : _g.Op("ReduceMean", [square], [Ints("axes", -1), Int("keepdims", 1)]);
        var deviation = _g.Op("Sqrt", [_g.Op("Add", [mean, _g.Float((float)_c.RmsNormEps)])]);
        return _g.Op("Mul", [_g.Op("Div", [x, deviation]), gain]);
    }

    private string Rope(string x)
    {
        if (_rope is not { } rope) return x;
        long half = _c.HeadDim / 2;
        var first = _g.Op("Slice", [x, _g.Int64s(0), _g.Int64s(half), _g.Int64s(-1)]);
        var second = _g.Op("Slice", [x, _g.Int64s(half), _g.Int64s(long.MaxValue), _g.Int64s(-1)]);
        var rotated = _g.Op("Concat", [_g.Op("Neg", [second]), first], [Int("axis", -1)]);
        return _g.Op("Add", [_g.Op("Mul", [x, rope.Cos]), _g.Op("Mul", [rotated, rope.Sin])]);
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
}
