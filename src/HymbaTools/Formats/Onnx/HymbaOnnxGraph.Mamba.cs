using HymbaTools.Formats.Onnx.Protos;
using HymbaTools.Model;
using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>The SSM heads of a layer: causal conv, Δ/B/C, and the selective scan.</summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <summary>
    /// SSM heads of one layer on h [BT, d]; returns [BT, d_in].
    /// <code>
    ///   x, z = h·Wx, h·Wz
    ///   u = silu(conv([state | x]))          state: k-1 past inputs (the meta tokens' on a first call)
    ///   Δ, B, C = split(u·Wx_proj); inner RMSNorms; Δ = softplus(Δ·Wdt + b)
    ///   S_t = exp(Δ_t·A) ⊙ S_{t-1} + Δ_t·u_t·B_t;  y_t = S_t·C_t + D·u_t   (If: one step directly, else a Scan)
    ///   out = y ⊙ silu(z)
    /// </code>
    /// </summary>
    private string MakeMamba(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, dIn = c.DInner, n = c.SsmStateSize, r = c.DtRank, k = c.ConvKernel;
        var x = MakeLinear(h, W(StoredRole.SsmIn, i));
        var z = MakeLinear(h, W(StoredRole.SsmGate, i));

        // Causal depthwise conv over [k-1 cached inputs | this call's inputs], then SiLU.
        var channelsFirst = _g.Op("Transpose", [_g.Op("Reshape", [x, Shape(_batch, _newTokens, dIn)])], [Ints("perm", 0, 2, 1)]);
        var convInput = _g.Op("Concat", [Initial(HymbaOnnxNames.PastConv(i), HymbaOnnxNames.MetaConv(i)), channelsFirst], [Int("axis", 2)]);
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

        var a = _g.Op("Neg", [_g.Op("Exp", [W(StoredRole.SsmALog, i)])]);                                      // [d_in, N]
        var decay = _g.Op("Exp", [_g.Op("Mul", [_g.Op("Reshape", [delta, Shape(_batch, _newTokens, dIn, 1)]), a])]); // [B, T, d_in, N]
        var deltaU = _g.Op("Reshape", [_g.Op("Mul", [delta, u]), Shape(_batch, _newTokens, dIn, 1)]);
        var input = _g.Op("Mul", [deltaU, _g.Op("Reshape", [bm, Shape(_batch, _newTokens, 1, n)])]);          // Δ·u·B [B, T, d_in, N]
        var readout = _g.Op("Reshape", [cm, Shape(_batch, _newTokens, 1, n)]);
        var state = Initial(HymbaOnnxNames.PastSsm(i), HymbaOnnxNames.MetaSsm(i));
        // One step (decode) updates the state directly; longer calls run the Scan. ORT runs only the branch taken.
        var oneStep = _g.Op("Equal", [_newTokens, _g.Int64s(1)]);
        var scan = _g.Ops("If", [_g.Op("Squeeze", [oneStep])], 2,
            [GraphAttribute("then_branch", MakeSsmStep(i, state, decay, input, readout)), GraphAttribute("else_branch", MakeSsmScan(i, state, decay, input, readout))],
            [HymbaOnnxNames.PresentSsm(i), $"ssm_y_{i}"]);
        var y = _g.Op("Reshape", [scan[1], _g.Int64s(-1, dIn)]);
        y = _g.Op("Add", [y, _g.Op("Mul", [u, W(StoredRole.SsmD, i)])]);
        return _g.Op("Mul", [y, Silu(z)]);
    }

    /// <summary>A recurrent state input, replaced by the meta tokens' state (a constant) on a first call.</summary>
    private string Initial(string past, string meta) => HasMetaTokens ? _g.Op("Where", [_firstCall, meta, past]) : past;

    /// <summary>The If branch for one time step: S = dA ⊙ S + dBu; y = Σ_N S ⊙ C, without a loop.</summary>
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

    /// <summary>The If branch for several steps: a Scan over time whose body is the recurrence alone.</summary>
    private GraphProto MakeSsmScan(int layer, string state, string decay, string input, string readout)
    {
        var c = _c;
        var branch = _g.Subgraph($"ssm_scan_{layer}");
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
            var window = _g.Op("Slice", [convInput, start, _g.Op("Add", [_newTokens, start]), _g.Int64s(2)]);
            var tap = _g.Op("Slice", [W(StoredRole.SsmConv1d, layer), start, _g.Int64s(j + 1), _g.Int64s(1)]); // [d_in, 1]
            var product = _g.Op("Mul", [window, tap]);
            sum = sum is null ? product : _g.Op("Add", [sum, product]);
        }
        var bias = W(StoredRole.SsmConv1dBias, layer);
        return _weights.ContainsKey(bias) ? _g.Op("Add", [sum!, Unsqueeze(bias, 1)]) : sum!;
    }
}
