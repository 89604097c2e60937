using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace HymbaTools.Model;

/// <summary>
/// The SSM heads of a layer (docs/architecture.md §3.5): causal depthwise conv + SiLU over the x block
/// (continuing from the cached last inputs), x_proj split into dt/B/C with their inner RMSNorms,
/// Δ = softplus(dt_proj(dt) + bias), the selective scan with D skip and SiLU(z) gate.
/// </summary>
internal static class HymbaMamba
{
    /// <param name="x">[B, T, d_in] (the in_proj x block)</param>
    /// <param name="z">[B, T, d_in] (the in_proj z block, the gate)</param>
    /// <returns>[B, T, d_in]</returns>
    public static Tensor Forward(HymbaConfig c, LayerWeights w, Tensor x, Tensor z, HymbaCache cache, bool differentiable, IActivationRecorder? stats = null)
    {
        long batch = x.shape[0], steps = x.shape[1];
        int k = c.ConvKernel, layer = w.Plan.Index;
        var xt = x.transpose(1, 2);                                           // [B, d_in, T]
        var history = cache.ConvStates[layer] ?? torch.zeros(batch, c.DInner, k);
        var convInput = torch.cat([history[.., .., TensorIndex.Slice(1, null)], xt], 2); // k-1 previous inputs, then T new
        var u = F.silu(F.conv1d(convInput, w.ConvWeight.unsqueeze(1), w.ConvBias, groups: c.DInner)); // [B, d_in, T]
        var newConvState = torch.cat([history, xt], 2)[.., .., TensorIndex.Slice(-k, null)].contiguous();

        var ut = u.transpose(1, 2);                                           // [B, T, d_in]
        stats?.Record(layer, ActivationPoint.SsmProjectionInput, ut);
        var s = F.linear(ut, w.XProj);                                        // [B, T, R + 2N]
        var parts = s.split([c.DtRank, c.SsmStateSize, c.SsmStateSize], -1);
        // mamba_inner_layernorms = false means no normalisation at all (not a gain-less RMSNorm).
        Tensor Inner(Tensor t, Tensor? gain) => gain is null ? t : RmsNorm.Apply(t, gain, c.RmsNormEps);
        var dt = Inner(parts[0], w.DtNorm);
        var bm = Inner(parts[1], w.BNorm).contiguous();
        var cm = Inner(parts[2], w.CNorm).contiguous();
        stats?.Record(layer, ActivationPoint.DtProjectionInput, dt);
        var delta = TorchScalars.Softplus(TorchScalars.Add(F.linear(dt, w.DtProjWeight), w.DtProjBias)); // [B, T, d_in]

        var initial = cache.SsmStates[layer] ?? torch.zeros(batch, c.DInner, c.SsmStateSize);
        Tensor y, finalState;
        if (differentiable)
        {
            (y, finalState) = SelectiveScan.RunDifferentiable(u, delta.transpose(1, 2), w.A, bm, cm, w.D, z.transpose(1, 2), initial);
        }
        else
        {
            finalState = initial.clone();
            y = SelectiveScan.Run(u.contiguous(), delta.transpose(1, 2).contiguous(), w.A, bm, cm, w.D, z.transpose(1, 2).contiguous(), finalState);
        }

        cache.ConvStates[layer]?.Dispose();
        cache.ConvStates[layer] = newConvState.DetachFromDisposeScope();
        cache.SsmStates[layer]?.Dispose();
        cache.SsmStates[layer] = finalState.detach().DetachFromDisposeScope();
        return y.transpose(1, 2);                                             // [B, T, d_in]
    }
}
