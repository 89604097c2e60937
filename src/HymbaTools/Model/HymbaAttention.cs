using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace HymbaTools.Model;

/// <summary>
/// The attention heads of a layer (docs/architecture.md §3.3): RoPE on Q (and K for KV owners), GQA with
/// query head h reading KV head h / (H/H_kv), global-causal or sliding-window mask in which the meta
/// tokens stay visible, and KV consumers reading their producer's post-RoPE K/V. No output projection:
/// the heads' outputs are concatenated to d_in and fused with the SSM branch.
/// </summary>
internal static class HymbaAttention
{
    /// <param name="q">[B, T, H*d_h]</param>
    /// <param name="k">[B, T, H_kv*d_h] for KV owners, null for consumers</param>
    /// <param name="v">[B, T, H_kv*d_v] for KV owners, null for consumers</param>
    /// <returns>[B, T, H*d_v]</returns>
    public static Tensor Forward(HymbaConfig c, LayerPlan plan, Tensor q, Tensor? k, Tensor? v, long[] positions, HymbaCache cache, RotaryEmbedding rope,
        (Tensor Cos, Tensor Sin)? angles, ForwardFault fault)
    {
        long batch = q.shape[0], steps = q.shape[1];
        var qh = q.view(batch, steps, c.NumHeads, c.HeadDim).transpose(1, 2);
        if (rope.Enabled) qh = RotaryEmbedding.Apply(qh, angles!.Value.Cos, angles.Value.Sin);

        if (plan.OwnsKv)
        {
            var kh = k!.view(batch, steps, c.NumKvHeads, c.HeadDim).transpose(1, 2);
            var vh = v!.view(batch, steps, c.NumKvHeads, c.VHeadDim).transpose(1, 2);
            if (rope.Enabled) kh = RotaryEmbedding.Apply(kh, angles!.Value.Cos, angles.Value.Sin);
            Append(cache, plan.Index, kh, vh, positions);
        }
        int source = fault == ForwardFault.ConsumerReadsLayerZero && !plan.OwnsKv ? 0 : plan.KvSource;
        var entry = cache.Kv[source] ?? throw new InvalidOperationException($"layer {plan.Index}: producer {source} has no K/V");

        // Contiguous groups: query head h reads KV head h / (H / H_kv). (The modulo mapping is a known mistake.)
        var keys = fault == ForwardFault.GqaModuloMapping ? entry.Keys.repeat(1, c.GqaGroupSize, 1, 1) : entry.Keys.repeat_interleave(c.GqaGroupSize, 1);
        var values = fault == ForwardFault.GqaModuloMapping ? entry.Values.repeat(1, c.GqaGroupSize, 1, 1) : entry.Values.repeat_interleave(c.GqaGroupSize, 1);
        using var mask = Mask(c, plan, positions, entry.Positions);
        // libtorch's fast CPU attention kernel needs equal Q/K and V head dims; V (d_in/H) is usually a
        // multiple of d_h, so attend once per d_h-wide slice of V (as the reference's flex path does) and
        // concatenate: the softmax weights are the same for every slice.
        Tensor output;
        if (c.VHeadDim != c.HeadDim && c.VHeadDim % c.HeadDim == 0)
        {
            var slices = values.split(c.HeadDim, -1).Select(part => F.scaled_dot_product_attention(qh, keys, part, mask, 0.0, false)).ToArray();
            output = torch.cat(slices, -1);
        }
        else output = F.scaled_dot_product_attention(qh, keys, values, mask, 0.0, false); // [B, H, T, d_v]
        return output.transpose(1, 2).reshape(batch, steps, c.NumHeads * c.VHeadDim);
    }

    private static void Append(HymbaCache cache, int layer, Tensor keys, Tensor values, long[] positions)
    {
        var old = cache.Kv[layer];
        if (old is null)
        {
            cache.Kv[layer] = new KvEntry
            {
                Keys = keys.contiguous().DetachFromDisposeScope(),
                Values = values.contiguous().DetachFromDisposeScope(),
                Positions = positions,
            };
            return;
        }
        var newKeys = torch.cat([old.Keys, keys], 2).DetachFromDisposeScope();
        var newValues = torch.cat([old.Values, values], 2).DetachFromDisposeScope();
        old.Keys.Dispose();
        old.Values.Dispose();
        old.Keys = newKeys;
        old.Values = newValues;
        old.Positions = old.Positions.Concat(positions).ToArray();
    }

    /// <summary>
    /// Additive mask [T, Tk]: 0 where query at absolute position a may read the key at position b
    /// (b &lt;= a, and for sliding layers also a - b &lt;= window or b &lt; meta-token count), -inf elsewhere.
    /// A float mask keeps libtorch on its fused attention kernel (a boolean one falls back to the slow path).
    /// </summary>
    internal static Tensor Mask(HymbaConfig c, LayerPlan plan, long[] queryPositions, long[] keyPositions)
    {
        int t = queryPositions.Length, tk = keyPositions.Length;
        var additive = new float[t * tk];
        long m = c.NumMemoryTokens;
        bool sliding = plan.Attention == AttentionKind.Sliding;
        long window = plan.Window ?? long.MaxValue;
        for (int i = 0; i < t; i++)
        {
            long a = queryPositions[i];
            for (int j = 0; j < tk; j++)
            {
                long b = keyPositions[j];
                bool allowed = b <= a && (!sliding || a - b <= window || b < m);
                additive[i * tk + j] = allowed ? 0f : float.NegativeInfinity;
            }
        }
        return torch.tensor(additive, [t, tk]);
    }
}
