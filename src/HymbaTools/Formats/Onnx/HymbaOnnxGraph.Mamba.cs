using HymbaTools.Model;
using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;

namespace HymbaTools.Formats.Onnx;

/// <summary>The SSM heads of a layer: causal conv with its state, Δ/B/C, and the selective scan.</summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <summary>
    /// SSM heads of one layer on h [B, T, d]; returns [B, T, d_in].
    /// <code>
    ///   x, z = h·Wx, h·Wz
    ///   u = silu(conv([state | x]))          CausalConvWithState; state: k-1 past inputs (the meta tokens' on a first call)
    ///   Δ, B, C = split(u·Wx_proj); inner RMSNorms; Δ = softplus(Δ·Wdt + b)
    ///   S_t = exp(Δ_t·A) ⊙ S_{t-1} + B_t ⊗ Δ_t·u_t;  y_t = S_t·C_t     LinearAttention "gated": per channel one head with
    ///                                                                N keys (decay per key) and one value, B and C shared
    ///   out = (y + D·u) ⊙ silu(z)
    /// </code>
    /// </summary>
    private string MakeMamba(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, dIn = c.DInner, n = c.SsmStateSize, r = c.DtRank, k = c.ConvKernel;
        var x = MakeLinear(h, W(StoredRole.SsmIn, i));
        var z = MakeLinear(h, W(StoredRole.SsmGate, i));

        var bias = W(StoredRole.SsmConv1dBias, i);
        var kernel = _g.Op("Reshape", [W(StoredRole.SsmConv1d, i), _g.Int64s(dIn, 1, k)]);        // folded when the session loads
        var conv = _g.Ops("CausalConvWithState",
            [_g.Op("Transpose", [x], [Ints("perm", 0, 2, 1)]), kernel, _weights.ContainsKey(bias) ? bias : _g.Floats($"conv_zero_bias.{i}", [dIn], new float[dIn]),
             Initial(HymbaOnnxNames.PastConv(i), HymbaOnnxNames.MetaConv(i))],
            2, [String("activation", "silu")], [_g.Fresh("conv"), HymbaOnnxNames.PresentConv(i)], OnnxConstants.MicrosoftDomain);
        var u = _g.Op("Transpose", [conv[0]], [Ints("perm", 0, 2, 1)]);                            // [B, T, d_in]

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

        var a = _g.Op("Neg", [_g.Op("Exp", [W(StoredRole.SsmALog, i)])]);                                       // [d_in, N], folded
        var decay = _g.Op("Reshape", [_g.Op("Mul", [Unsqueeze(delta, -1), a]), Shape(_batch, _newTokens, dIn * n)]); // log decay Δ·A
        var state = _g.Op("Reshape", [Initial(HymbaOnnxNames.PastSsm(i), HymbaOnnxNames.MetaSsm(i)), _g.Int64s(0, dIn, n, 1)]);
        var scan = _g.Ops("LinearAttention", [cm, bm, _g.Op("Mul", [delta, u]), state, decay], 2,
            [Int("q_num_heads", 1), Int("kv_num_heads", dIn), String("update_rule", "gated"), FloatAttribute("scale", 1f)],
            domain: OnnxConstants.MicrosoftDomain);
        _g.Op("Reshape", [scan[1], _g.Int64s(0, dIn, n)], output: HymbaOnnxNames.PresentSsm(i));
        var y = _g.Op("Add", [scan[0], _g.Op("Mul", [u, W(StoredRole.SsmD, i)])]);
        return _g.Op("Mul", [y, Silu(z)]);
    }

    /// <summary>A recurrent state input, replaced by the meta tokens' state (a constant) on a first call.</summary>
    private string Initial(string past, string meta) => HasMetaTokens ? _g.Op("Where", [_firstCall, meta, past]) : past;
}
