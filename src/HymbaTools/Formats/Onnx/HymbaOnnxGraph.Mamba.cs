using HymbaTools.Formats.Onnx.Protos;
using HymbaTools.Model;
using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// The SSM heads of a layer: causal conv with its state, Δ/B/C, and the selective scan. ONNX Runtime's LinearAttention
/// (update rule "gated", per-key decay) expresses the scan exactly, but measured 1.6-2x slower than this form at 1, 16
/// and 512 steps at 1.5B widths: it takes the decay in log space and exponentiates element by element inside its loop,
/// where here one vectorised Exp covers every step before the recurrence.
/// </summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <summary>
    /// SSM heads of one layer on h [B, T, d]; returns [B, T, d_in].
    /// <code>
    ///   x, z = h·Wx, h·Wz
    ///   u = silu(conv([state | x]))          MakeCausalConv; state: k-1 past inputs (the meta tokens' on a first call)
    ///   Δ, B, C = split(u·Wx_proj); inner RMSNorms; Δ = softplus(Δ·Wdt + b)
    ///   S_t = exp(Δ_t·A) ⊙ S_{t-1} + Δ_t·u_t·B_t;  y_t = S_t·C_t     exp and Δ·u·B for all steps at once, then an If:
    ///                                                                one step updates the state directly, more run a Scan
    ///   out = (y + D·u) ⊙ silu(z)
    /// </code>
    /// </summary>
    private string MakeMamba(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, dIn = c.DInner, n = c.SsmStateSize, r = c.DtRank;
        var x = MakeLinear(h, W(StoredRole.SsmIn, i));
        var z = MakeLinear(h, W(StoredRole.SsmGate, i));

        var bias = W(StoredRole.SsmConv1dBias, i);
        var conv = MakeCausalConv(_g.Op("Transpose", [x], [Ints("perm", 0, 2, 1)]), Initializer(StoredRole.SsmConv1d, i), _weights.ContainsKey(bias) ? bias : _g.Floats($"conv_zero_bias.{i}", [dIn], new float[dIn]),
            Initial(HymbaOnnxNames.PastConv(i), HymbaOnnxNames.MetaConv(i)), HymbaOnnxNames.PresentConv(i));
        var u = _g.Op("Transpose", [conv.Output], [Ints("perm", 0, 2, 1)]);                         // [B, T, d_in]

        var parts = _g.Ops("Split", [MakeLinear(u, W(StoredRole.SsmXProj, i)), _g.Int64s(r, n, n)], 3, [Int("axis", -1)]);
        // mamba_inner_layernorms = false: no normalisation at all (the norm weights are absent).
        string Inner(string part, StoredRole norm) => _weights.ContainsKey(W(norm, i)) ? MakeRmsNorm(part, W(norm, i)) : part;
        var dt = Inner(parts[0], StoredRole.SsmDtNorm);
        var bm = Inner(parts[1], StoredRole.SsmBNorm);
        var cm = Inner(parts[2], StoredRole.SsmCNorm);
        var preSoftplus = MakeLinear(dt, W(StoredRole.SsmDt, i), bias: W(StoredRole.SsmDtBias, i));
        // torch's softplus(threshold = 20) returns the input above the threshold. Below it, log(1 + exp(t)) from
        // ORT's vectorised Exp and Log: its Softplus kernel is scalar (36 µs for one decode row of 3200 at 1.5B, a
        // second per 1K-token prefill); the two differ only below t = -17, by less than 4e-8.
        var softplus = _g.Op("Log", [_g.Op("Add", [_g.Op("Exp", [preSoftplus]), _g.Float(1f)])]);
        var delta = _g.Op("Where", [_g.Op("Greater", [preSoftplus, _g.Float(20f)]), preSoftplus, softplus]);  // [B, T, d_in]

        var a = Initializer(StoredRole.SsmALog, i);                                                            // A = -exp(A_log) [d_in, N]
        var decay = _g.Op("Exp", [_g.Op("Mul", [_g.Op("Reshape", [delta, Shape(_batch, _newTokens, dIn, 1)]), a])]); // exp(Δ·A) [B, T, d_in, N]
        var deltaU = _g.Op("Reshape", [_g.Op("Mul", [delta, u]), Shape(_batch, _newTokens, dIn, 1)]);
        var input = _g.Op("Mul", [deltaU, _g.Op("Reshape", [bm, Shape(_batch, _newTokens, 1, n)])]);          // Δ·u·B [B, T, d_in, N]
        var readout = _g.Op("Reshape", [cm, Shape(_batch, _newTokens, 1, n)]);
        // One step after earlier text (decode) updates the past state directly; anything else runs the Scan, which
        // starts from the meta tokens' state on a first call. ORT runs only the branch taken, so decode never pays
        // for choosing between the two states (a Where over d_in x N per layer, 3 % of a step at 1.5B).
        var scan = _g.Ops("If", [DecodeStep()], 2,
            [GraphAttribute("then_branch", MakeSsmStep(i, HymbaOnnxNames.PastSsm(i), decay, input, readout)), GraphAttribute("else_branch", MakeSsmScan(i, decay, input, readout))],
            [HymbaOnnxNames.PresentSsm(i), _g.Fresh("ssm_y")]);                                                  // y [B, T, d_in]
        var y = _g.Op("Add", [scan[1], _g.Op("Mul", [u, W(StoredRole.SsmD, i)])]);
        return _g.Op("Mul", [y, Silu(z)]);
    }

    /// <summary>Scalar bool, built once for every layer's If: this call is one token after earlier text.</summary>
    private string DecodeStep()
    {
        if (_decodeStep.Length > 0) return _decodeStep;
        var oneToken = _g.Op("Equal", [_newTokens, _g.Int64s(1)]);
        if (HasMetaTokens) oneToken = _g.Op("And", [oneToken, _g.Op("Not", [_firstCall])]);
        return _decodeStep = _g.Op("Squeeze", [oneToken]);
    }

    /// <summary>A recurrent state input, replaced by the meta tokens' state (a constant) on a first call.</summary>
    private string Initial(string past, string meta) => HasMetaTokens ? _g.Op("Where", [_firstCall, meta, past]) : past;

    /// <summary>
    /// The If branch for one decode step: S = dA ⊙ S + dBu; y = Σ_N S ⊙ C, without a loop (the Scan body's own
    /// arithmetic: a MatMul readout sums in another order and moved decode 1e-5 away from the full forward).
    /// </summary>
    private GraphProto MakeSsmStep(int layer, string state, string decay, string input, string readout)
    {
        var c = _c;
        var branch = _g.Subgraph($"ssm_step_{layer}");
        var axis = branch.Int64s(1);
        var next = branch.Op("Add", [branch.Op("Mul", [branch.Op("Squeeze", [decay, axis]), state]), branch.Op("Squeeze", [input, axis])]);
        var y = branch.Op("ReduceSum", [branch.Op("Mul", [next, branch.Op("Squeeze", [readout, axis])]), branch.Int64s(2)], [Int("keepdims", 0)]);
        y = branch.Op("Unsqueeze", [y, axis]);
        branch.Graph.Output.Add(ValueInfo(next, DataType.Float, null, (long)c.DInner, (long)c.SsmStateSize));
        branch.Graph.Output.Add(ValueInfo(y, DataType.Float, null, 1L, (long)c.DInner));
        return branch.Graph;
    }

    /// <summary>The If branch for several steps or a first call: a Scan over time whose body is the recurrence alone.</summary>
    private GraphProto MakeSsmScan(int layer, string decay, string input, string readout)
    {
        var c = _c;
        var branch = _g.Subgraph($"ssm_scan_{layer}");
        var past = HymbaOnnxNames.PastSsm(layer);
        var state = HasMetaTokens ? branch.Op("Where", [_firstCall, HymbaOnnxNames.MetaSsm(layer), past]) : past;
        var outputs = branch.Ops("Scan", [state, decay, input, readout], 2,
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
}
