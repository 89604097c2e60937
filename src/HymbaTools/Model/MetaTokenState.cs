using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>Post-RoPE keys [H_kv, M, d_h] and values [H_kv, M, d_v] of the meta tokens in one KV-owning layer.</summary>
public sealed record MetaKeyValues(float[] Keys, float[] Values);

/// <summary>
/// The decoding state after the meta tokens alone: what every prompt starts from. The meta tokens come first
/// and attention is causal, so their keys, values, conv inputs and SSM state never depend on the prompt; an
/// export stores them as constants instead of pushing M extra tokens through every layer on each first call.
/// </summary>
public sealed class MetaTokenState
{
    private MetaTokenState(HymbaConfig config, IReadOnlyDictionary<int, MetaKeyValues> keyValues, IReadOnlyList<float[]> convStates, IReadOnlyList<float[]> ssmStates)
    {
        Config = config;
        KeyValues = keyValues;
        ConvStates = convStates;
        SsmStates = ssmStates;
    }

    public HymbaConfig Config { get; }
    /// <summary>Per KV-owning layer (by index); empty when the model has no meta tokens.</summary>
    public IReadOnlyDictionary<int, MetaKeyValues> KeyValues { get; }
    /// <summary>Per layer: the last k_conv - 1 pre-conv inputs [d_in, k_conv - 1] (zeros before the first input).</summary>
    public IReadOnlyList<float[]> ConvStates { get; }
    /// <summary>Per layer: the SSM state [d_in, N] after the last meta token.</summary>
    public IReadOnlyList<float[]> SsmStates { get; }

    /// <summary>
    /// Runs the meta tokens through the model in float32, loading one layer at a time (memory holds one layer and
    /// the M x d hidden state, not the model), exactly as the reference's first call does.
    /// </summary>
    public static MetaTokenState Compute(IHymbaTensorSource source, IProgress<(long Done, long Total)>? progress = null)
    {
        var c = source.Config;
        long m = c.NumMemoryTokens, convWidth = c.ConvKernel - 1;
        if (m == 0)
            return new MetaTokenState(c, new Dictionary<int, MetaKeyValues>(),
                [.. c.Layers.Select(_ => new float[c.DInner * convWidth])], [.. c.Layers.Select(_ => new float[c.DInner * c.SsmStateSize])]);

        using var scope = torch.NewDisposeScope();
        using var grad = torch.no_grad();
        using var rope = new RotaryEmbedding(c);
        using var cache = new HymbaCache(c, 1, DecodeWindowMode.MatchFullForward);
        var x = TorchMemory.Create([m, c.HiddenSize], span => source.CopyToFloat32(HymbaTensorCatalog.MemoryTokens, span)).unsqueeze(0);
        long[] positions = [.. Enumerable.Range(0, (int)m).Select(p => (long)p)];
        var angles = rope.Enabled ? rope.Angles(positions) : ((Tensor, Tensor)?)null;
        foreach (var plan in c.Layers)
        {
            Common.Interruption.ThrowIfRequested();
            var weights = HymbaWeights.LoadLayer(source, plan);
            try
            {
                using var layerScope = torch.NewDisposeScope();
                x = HymbaModel.DecoderLayer(c, rope, weights, x, positions, cache, angles, ForwardOptions.Default).MoveToOuterDisposeScope();
            }
            finally
            {
                HymbaWeights.DisposeLayer(weights, ownsTensors: true);
                // One layer resident at a time: the layer's mapped source pages and libtorch's freed buffers go back.
                source.ReleaseResidentPages();
                Common.NativeHeap.Trim();
            }
            progress?.Report((plan.Index + 1, c.NumLayers));
        }

        var keyValues = c.KvOwners.ToDictionary(l => l.Index, l =>
        {
            var entry = cache.Kv[l.Index]!;
            return new MetaKeyValues(TorchMemory.ToArray(entry.Keys[0].contiguous()), TorchMemory.ToArray(entry.Values[0].contiguous()));
        });
        // The reference keeps the last k_conv inputs; the next conv reads only the last k_conv - 1 of them.
        var conv = c.Layers.Select(l => TorchMemory.ToArray(cache.ConvStates[l.Index]![0][.., TensorIndex.Slice(1, null)].contiguous())).ToArray();
        var ssm = c.Layers.Select(l => TorchMemory.ToArray(cache.SsmStates[l.Index]![0].contiguous())).ToArray();
        return new MetaTokenState(c, keyValues, conv, ssm);
    }
}
