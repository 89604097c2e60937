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
/// pass (<see cref="HymbaModel"/>) in the same operation order.
/// <para>
/// Decoding state: K/V of KV-owning layers (consumers read their producer's), the last k_conv - 1 pre-conv
/// inputs and the SSM state of every layer. The first call is recognised by a zero-length past (the
/// attention mask is as long as the new tokens): only then are the meta tokens prepended. Text positions
/// continue after the meta tokens. A sliding group's present keeps the meta tokens plus the last
/// sliding_window keys, which is all a later query can attend (the reference's MatchFullForward mode).
/// </para>
/// <para>
/// The selective scan is an ONNX <c>Scan</c> over time whose body is the recurrence alone
/// (S = dA ⊙ S + dBu; y = S·C); exp(Δ·A) and Δ·B·u are computed for all steps at once outside the loop,
/// where they vectorise. A decode step is the same Scan with one iteration.
/// </para>
/// </summary>
internal sealed class HymbaOnnxGraph
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
    private string _batch = "", _steps = "", _newTokens = "", _metaNow = "", _endPosition = "";
    private string _positions = "";           // [T] int64, absolute positions of this call's steps (meta included)
    private (string Cos, string Sin)? _rope;  // [T, d_h] float

    private HymbaOnnxGraph(OnnxGraphBuilder g, HymbaConfig c, IReadOnlyList<OnnxWeight> weights, HymbaGraphOptions options)
    {
        _g = g;
        _c = c;
        _weights = weights.ToDictionary(w => w.Tensor.Name, StringComparer.Ordinal);
        _options = options;
    }

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

    /// <summary>Token embeddings with the meta tokens prepended on the first call; sets the per-call shape values, positions and RoPE tables.</summary>
    private string MakeEmbedding()
    {
        var c = _c;
        long m = c.NumMemoryTokens;
        var idsShape = _g.Op("Shape", [HymbaOnnxNames.InputIds]);
        _batch = _g.Op("Gather", [idsShape, _g.Int64s(0)]);
        _newTokens = _g.Op("Gather", [idsShape, _g.Int64s(1)]);
        var totalText = _g.Op("Gather", [_g.Op("Shape", [HymbaOnnxNames.AttentionMask]), _g.Int64s(1)]);
        var pastText = _g.Op("Sub", [totalText, _newTokens]);
        _metaNow = m > 0
            ? _g.Op("Where", [_g.Op("Equal", [pastText, _g.Int64s(0)]), _g.Int64s(m), _g.Int64s(0)])
            : _g.Int64s(0);
        _steps = _g.Op("Add", [_metaNow, _newTokens]);
        _endPosition = _g.Op("Add", [totalText, _g.Int64s(m)]);
        var start = _g.Op("Sub", [_endPosition, _steps]);
        _positions = _g.Op("Range", [_g.Op("Squeeze", [start]), _g.Op("Squeeze", [_endPosition]), _g.Int64Scalar(1)]);
        if (c.Rope) _rope = MakeRopeTables();

        var tokens = MakeGather(W(StoredRole.TokenEmbedding), HymbaOnnxNames.InputIds);
        if (m == 0) return tokens;
        var meta = _g.Op("Slice", [W(StoredRole.MetaTokens), _g.Int64s(0), _metaNow, _g.Int64s(0)]);
        var metaBatch = _g.Op("Expand", [Unsqueeze(meta, 0), _g.Op("Concat", [_batch, _g.Int64s(1, 1)], [Int("axis", 0)])]);
        return _g.Op("Concat", [metaBatch, tokens], [Int("axis", 1)]);
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

    /// <summary>Attention heads of one layer on h [BT, d]; returns [BT, H*d_v].</summary>
    private string MakeAttention(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, kvHeads = c.NumKvHeads, group = c.GqaGroupSize;
        // Queries as [B, H_kv, g, T, d_h]: query head h = kv * g + j reads KV head kv (contiguous groups),
        // so grouped queries multiply the un-repeated K/V.
        var q = _g.Op("Reshape", [MakeLinear(h, W(StoredRole.AttnQ, i)), Shape(_batch, _steps, kvHeads, group, c.HeadDim)]);
        q = Rope(_g.Op("Transpose", [q], [Ints("perm", 0, 2, 3, 1, 4)]));
        if (plan.OwnsKv) MakeKvOwner(plan, h);
        var (keys, values, _) = _kv[plan.KvSource];

        var queries = _g.Op("Reshape", [q, _g.Int64s(0, 0, -1, c.HeadDim)]);                          // [B, H_kv, g*T, d_h]
        var scores = _g.Op("MatMul", [queries, _g.Op("Transpose", [keys], [Ints("perm", 0, 1, 3, 2)])]);
        scores = _g.Op("Mul", [scores, _g.Float((float)(1.0 / Math.Sqrt(c.HeadDim)))]);
        var grouped = _g.Op("Reshape", [scores, Shape(_batch, kvHeads, group, _steps, -1)]);        // [B, H_kv, g, T, Tk]
        var probabilities = _g.Op("Softmax", [_g.Op("Add", [grouped, MakeMask(plan)])], [Int("axis", -1)]);
        var flat = _g.Op("Reshape", [probabilities, _g.Op("Shape", [scores])]);
        var output = _g.Op("MatMul", [flat, values]);                                                   // [B, H_kv, g*T, d_v]
        output = _g.Op("Reshape", [output, Shape(_batch, kvHeads, group, _steps, c.VHeadDim)]);
        output = _g.Op("Transpose", [output], [Ints("perm", 0, 3, 1, 2, 4)]);                           // [B, T, H_kv, g, d_v]
        return _g.Op("Reshape", [output, _g.Int64s(-1, c.NumHeads * c.VHeadDim)]);
    }

    /// <summary>K/V of a KV-owning layer: this call's post-RoPE keys appended to the past, and the trimmed present.</summary>
    private void MakeKvOwner(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index;
        var k = _g.Op("Reshape", [MakeLinear(h, W(StoredRole.AttnK, i)), Shape(_batch, _steps, c.NumKvHeads, c.HeadDim)]);
        k = Rope(_g.Op("Transpose", [k], [Ints("perm", 0, 2, 1, 3)]));
        var v = _g.Op("Reshape", [MakeLinear(h, W(StoredRole.AttnV, i)), Shape(_batch, _steps, c.NumKvHeads, c.VHeadDim)]);
        v = _g.Op("Transpose", [v], [Ints("perm", 0, 2, 1, 3)]);
        var keys = _g.Op("Concat", [HymbaOnnxNames.PastKey(i), k], [Int("axis", 2)]);
        var values = _g.Op("Concat", [HymbaOnnxNames.PastValue(i), v], [Int("axis", 2)]);

        // Absolute position of every cached key: the meta tokens first (0..M-1), then a contiguous run
        // that ends at this call's last position.
        long m = c.NumMemoryTokens;
        var length = _g.Op("Gather", [_g.Op("Shape", [keys]), _g.Int64s(2)]);
        var index = _g.Op("Range", [_g.Int64Scalar(0), _g.Op("Squeeze", [length]), _g.Int64Scalar(1)]);
        var shifted = _g.Op("Add", [index, _g.Op("Sub", [_endPosition, length])]);
        var positions = m > 0 ? _g.Op("Where", [_g.Op("Less", [index, _g.Int64s(m)]), index, shifted]) : shifted;
        _kv[i] = (keys, values, positions);

        // A group whose layers all slide keeps only what a later query can attend; one global layer keeps all.
        var group = c.Layers.Where(l => l.KvSource == i).ToList();
        bool slides = group.All(l => l.Attention == AttentionKind.Sliding && l.Window is not null);
        if (!slides)
        {
            _g.Op("Identity", [keys], output: HymbaOnnxNames.PresentKey(i));
            _g.Op("Identity", [values], output: HymbaOnnxNames.PresentValue(i));
            return;
        }
        long window = group.Max(l => l.Window!.Value);
        var firstKept = _g.Op("Max", [_g.Op("Sub", [length, _g.Int64s(window)]), _g.Int64s(m)]);
        string Trim(string all, string output)
        {
            var recent = _g.Op("Slice", [all, firstKept, _g.Int64s(long.MaxValue), _g.Int64s(2)]);
            return m > 0
                ? _g.Op("Concat", [_g.Op("Slice", [all, _g.Int64s(0), _g.Int64s(m), _g.Int64s(2)]), recent], [Int("axis", 2)], output)
                : _g.Op("Identity", [recent], output: output);
        }
        Trim(keys, HymbaOnnxNames.PresentKey(i));
        Trim(values, HymbaOnnxNames.PresentValue(i));
    }

    /// <summary>
    /// Additive mask [T, Tk] for a layer over its producer's keys: 0 where key position b may be read by
    /// query position a (b &lt;= a, and for sliding layers a - b &lt;= window or b a meta token), -inf elsewhere.
    /// </summary>
    private string MakeMask(LayerPlan plan)
    {
        var key = (plan.KvSource, plan.Attention, plan.Window);
        if (_masks.TryGetValue(key, out var cached)) return cached;
        long m = _c.NumMemoryTokens;
        var queries = Unsqueeze(_positions, 1);                        // [T, 1]
        var keys = Unsqueeze(_kv[plan.KvSource].Positions, 0);         // [1, Tk]
        var allowed = _g.Op("LessOrEqual", [keys, queries]);
        if (plan.Attention == AttentionKind.Sliding && plan.Window is { } window)
        {
            var near = _g.Op("LessOrEqual", [_g.Op("Sub", [queries, keys]), _g.Int64s(window)]);
            if (m > 0) near = _g.Op("Or", [near, _g.Op("Less", [keys, _g.Int64s(m)])]);
            allowed = _g.Op("And", [allowed, near]);
        }
        var mask = _g.Op("Where", [allowed, _g.Float(0f), _g.Float(float.NegativeInfinity)]);
        _masks[key] = mask;
        return mask;
    }

    /// <summary>SSM heads of one layer on h [BT, d]; returns [BT, d_in].</summary>
    private string MakeMamba(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, dIn = c.DInner, n = c.SsmStateSize, r = c.DtRank, k = c.ConvKernel;
        var x = MakeLinear(h, W(StoredRole.SsmIn, i));
        var z = MakeLinear(h, W(StoredRole.SsmGate, i));

        // Causal depthwise conv over [k-1 cached inputs | this call's inputs], then SiLU.
        var channelsFirst = _g.Op("Transpose", [_g.Op("Reshape", [x, Shape(_batch, _steps, dIn)])], [Ints("perm", 0, 2, 1)]);
        var convInput = _g.Op("Concat", [HymbaOnnxNames.PastConv(i), channelsFirst], [Int("axis", 2)]);
        var conv = MakeCausalConv(i, convInput);
        var convLength = _g.Op("Gather", [_g.Op("Shape", [convInput]), _g.Int64s(2)]);
        _g.Op("Slice", [convInput, _g.Op("Sub", [convLength, _g.Int64s(k - 1)]), _g.Int64s(long.MaxValue), _g.Int64s(2)], output: HymbaOnnxNames.PresentConv(i));
        var u = _g.Op("Reshape", [_g.Op("Transpose", [Silu(conv)], [Ints("perm", 0, 2, 1)]), _g.Int64s(-1, dIn)]); // [BT, d_in]

        var s = MakeLinear(u, W(StoredRole.SsmXProj, i));
        string Part(long from, long to, StoredRole norm)
        {
            var part = _g.Op("Slice", [s, _g.Int64s(from), _g.Int64s(to), _g.Int64s(1)]);
            // mamba_inner_layernorms = false: no normalisation at all (the norm weights are absent).
            return _weights.ContainsKey(W(norm, i)) ? MakeRmsNorm(part, W(norm, i)) : part;
        }
        var dt = Part(0, r, StoredRole.SsmDtNorm);
        var bm = Part(r, r + n, StoredRole.SsmBNorm);
        var cm = Part(r + n, r + 2 * n, StoredRole.SsmCNorm);
        var preSoftplus = _g.Op("Add", [MakeLinear(dt, W(StoredRole.SsmDt, i)), W(StoredRole.SsmDtBias, i)]);
        // torch's softplus(threshold = 20) returns the input above the threshold. Below it, log(1 + exp(t)) from
        // ORT's vectorised Exp and Log: its Softplus kernel is scalar (36 µs for one decode row of 3200 at 1.5B, a
        // second per 1K-token prefill); the two differ only below t = -17, by less than 4e-8.
        var softplus = _g.Op("Log", [_g.Op("Add", [_g.Op("Exp", [preSoftplus]), _g.Float(1f)])]);
        var delta = _g.Op("Where", [_g.Op("Greater", [preSoftplus, _g.Float(20f)]), preSoftplus, softplus]);

        var a = _g.Op("Neg", [_g.Op("Exp", [W(StoredRole.SsmALog, i)])]);                               // [d_in, N]
        var decay = _g.Op("Exp", [_g.Op("Mul", [_g.Op("Reshape", [delta, Shape(_batch, _steps, dIn, 1)]), a])]); // [B, T, d_in, N]
        var deltaU = _g.Op("Reshape", [_g.Op("Mul", [delta, u]), Shape(_batch, _steps, dIn, 1)]);
        var input = _g.Op("Mul", [deltaU, _g.Op("Reshape", [bm, Shape(_batch, _steps, 1, n)])]);        // Δ·u·B [B, T, d_in, N]
        var readout = _g.Op("Reshape", [cm, Shape(_batch, _steps, 1, n)]);
        // One step (decode) updates the state directly; longer calls run the Scan. ORT runs only the branch taken.
        var oneStep = _g.Op("Equal", [_steps, _g.Int64s(1)]);
        var scan = _g.Ops("If", [_g.Op("Squeeze", [oneStep])], 2,
            [GraphAttribute("then_branch", MakeSsmStep(i, decay, input, readout)), GraphAttribute("else_branch", MakeSsmScan(i, decay, input, readout))],
            [HymbaOnnxNames.PresentSsm(i), $"ssm_y_{i}"]);
        var y = _g.Op("Reshape", [scan[1], _g.Int64s(-1, dIn)]);
        y = _g.Op("Add", [y, _g.Op("Mul", [u, W(StoredRole.SsmD, i)])]);
        return _g.Op("Mul", [y, Silu(z)]);
    }

    /// <summary>The If branch for one time step: S = dA ⊙ S + dBu; y = Σ_N S ⊙ C, without a loop.</summary>
    private GraphProto MakeSsmStep(int layer, string decay, string input, string readout)
    {
        var c = _c;
        var branch = _g.Subgraph($"ssm_step_{layer}");
        var axis = branch.Int64s(1);
        var next = branch.Op("Add", [branch.Op("Mul", [branch.Op("Squeeze", [decay, axis]), HymbaOnnxNames.PastSsm(layer)]), branch.Op("Squeeze", [input, axis])]);
        var y = branch.Op("ReduceSum", [branch.Op("Mul", [next, branch.Op("Squeeze", [readout, axis])]), branch.Int64s(2)], [Int("keepdims", 0)]);
        y = branch.Op("Unsqueeze", [y, axis]);
        branch.Graph.Output.Add(ValueInfo(next, DataType.Float, null, (long)c.DInner, (long)c.SsmStateSize));
        branch.Graph.Output.Add(ValueInfo(y, DataType.Float, null, 1L, (long)c.DInner));
        return branch.Graph;
    }

    /// <summary>The If branch for several steps: a Scan over time whose body is the recurrence alone.</summary>
    private GraphProto MakeSsmScan(int layer, string decay, string input, string readout)
    {
        var c = _c;
        var branch = _g.Subgraph($"ssm_scan_{layer}");
        var outputs = branch.Ops("Scan", [HymbaOnnxNames.PastSsm(layer), decay, input, readout], 2,
            [GraphAttribute("body", MakeScanBody(layer)), Int("num_scan_inputs", 3), Ints("scan_input_axes", 1, 1, 1), Ints("scan_output_axes", 1)]);
        branch.Graph.Output.Add(ValueInfo(outputs[0], DataType.Float, null, (long)c.DInner, (long)c.SsmStateSize));
        branch.Graph.Output.Add(ValueInfo(outputs[1], DataType.Float, null, null, (long)c.DInner));
        return branch.Graph;
    }

    /// <summary>One step of the recurrence inside the Scan: S = dA ⊙ S + dBu; y = Σ_N S ⊙ C.</summary>
    private GraphProto MakeScanBody(int layer)
    {
        var c = _c;
        var body = _g.Subgraph($"ssm_scan_body_{layer}");
        string state = $"scan_{layer}_state", decay = $"scan_{layer}_decay", input = $"scan_{layer}_input", readout = $"scan_{layer}_readout";
        body.Graph.Input.Add(ValueInfo(state, DataType.Float, null, (long)c.DInner, (long)c.SsmStateSize));
        body.Graph.Input.Add(ValueInfo(decay, DataType.Float, null, (long)c.DInner, (long)c.SsmStateSize));
        body.Graph.Input.Add(ValueInfo(input, DataType.Float, null, (long)c.DInner, (long)c.SsmStateSize));
        body.Graph.Input.Add(ValueInfo(readout, DataType.Float, null, 1L, (long)c.SsmStateSize));
        var next = body.Op("Add", [body.Op("Mul", [decay, state]), input], output: $"scan_{layer}_next");
        body.Op("ReduceSum", [body.Op("Mul", [next, readout]), body.Int64s(2)], [Int("keepdims", 0)], $"scan_{layer}_y");
        body.Graph.Output.Add(ValueInfo($"scan_{layer}_next", DataType.Float, null, (long)c.DInner, (long)c.SsmStateSize));
        body.Graph.Output.Add(ValueInfo($"scan_{layer}_y", DataType.Float, null, (long)c.DInner));
        return body.Graph;
    }

    private void MakeHead(string hidden)
    {
        var c = _c;
        var normalized = _g.Op("Reshape", [MakeRmsNorm(hidden, W(StoredRole.OutputNorm)), Shape(_batch, _steps, c.HiddenSize)]);
        var text = _g.Op("Slice", [normalized, _metaNow, _g.Int64s(long.MaxValue), _g.Int64s(1)]);
        var flat = _g.Op("Reshape", [text, _g.Int64s(-1, c.HiddenSize)]);
        var head = c.TieWordEmbeddings ? W(StoredRole.TokenEmbedding) : W(StoredRole.Output);
        _g.Op("Reshape", [MakeLinear(flat, head), Shape(_batch, _newTokens, c.VocabSize)], output: HymbaOnnxNames.Logits);
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
    /// The depthwise causal conv as k shifted multiply-adds over [B, d_in, k-1+T]: out_t = bias + Σ_j w_j · in_{t+j}.
    /// ONNX Runtime's grouped Conv runs one tiny GEMM per channel (d_in of them), which costs more than the
    /// arithmetic at every length; the slices and products are one vectorised pass each.
    /// </summary>
    private string MakeCausalConv(int layer, string convInput)
    {
        int k = _c.ConvKernel;
        string? sum = null;
        for (int j = 0; j < k; j++)
        {
            var start = _g.Int64s(j);
            var window = _g.Op("Slice", [convInput, start, _g.Op("Add", [_steps, start]), _g.Int64s(2)]);
            var tap = _g.Op("Slice", [W(StoredRole.SsmConv1d, layer), start, _g.Int64s(j + 1), _g.Int64s(1)]); // [d_in, 1]
            var product = _g.Op("Mul", [window, tap]);
            sum = sum is null ? product : _g.Op("Add", [sum, product]);
        }
        var bias = W(StoredRole.SsmConv1dBias, layer);
        return _weights.ContainsKey(bias) ? _g.Op("Add", [sum!, Unsqueeze(bias, 1)]) : sum!;
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
