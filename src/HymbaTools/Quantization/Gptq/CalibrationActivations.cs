using HymbaTools.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Gptq;

/// <summary>
/// Calibration chunks pushed through a model one decoder layer at a time: the hidden states of every chunk (one
/// batch, each chunk a fresh sequence with the meta tokens in front) and the cache the layers share (KV consumers
/// read their producer's keys). A layer can run twice (once to measure its inputs, once rounded); its cache
/// entries are reset in between. Memory holds the activations and whatever layer the caller loaded.
/// </summary>
internal sealed class CalibrationActivations : IDisposable
{
    private readonly HymbaConfig _config;
    private readonly RotaryEmbedding _rope;
    private readonly HymbaCache _cache;
    private readonly long[] _positions;
    private readonly (Tensor Cos, Tensor Sin)? _angles;
    private Tensor _hidden;

    public CalibrationActivations(IHymbaTensorSource source, long[][] chunks)
    {
        if (chunks.Length == 0 || chunks.Any(c => c.Length != chunks[0].Length || c.Length == 0)) throw new ArgumentException("calibration chunks must be non-empty and of one length");
        var c = _config = source.Config;
        using var grad = no_grad();
        _rope = new RotaryEmbedding(c);
        _cache = new HymbaCache(c, chunks.Length, DecodeWindowMode.MatchFullForward);
        int batch = chunks.Length, length = chunks[0].Length;
        long meta = c.NumMemoryTokens;
        MetaSteps = meta;
        using (var scope = NewDisposeScope())
        {
            var embedding = TorchMemory.Create([c.VocabSize, c.HiddenSize], span => source.CopyToFloat32(HymbaTensorCatalog.EmbedTokens, span));
            var ids = torch.tensor(chunks.SelectMany(r => r).ToArray(), [batch * length]);
            var x = embedding.index_select(0, ids).view(batch, length, c.HiddenSize);
            if (meta > 0)
            {
                var tokens = TorchMemory.Create([meta, c.HiddenSize], span => source.CopyToFloat32(HymbaTensorCatalog.MemoryTokens, span));
                x = torch.cat([tokens.unsqueeze(0).expand(batch, -1, -1), x], 1);
            }
            _hidden = x.contiguous().DetachFromDisposeScope();
        }
        _positions = [.. Enumerable.Range(0, (int)(meta + length)).Select(p => (long)p)];
        _angles = _rope.Enabled ? _rope.Angles(_positions) : null;
    }

    /// <summary>Positions of the meta tokens at the front of every chunk.</summary>
    public long MetaSteps { get; }

    /// <summary>The current hidden states [chunks, M + T, d] (the next layer's input).</summary>
    public Tensor Hidden => _hidden;

    /// <summary>Runs a layer on the current hidden states without moving on (to measure its inputs); its cache entries are reset after.</summary>
    public void Probe(LayerWeights weights, ForwardOptions options)
    {
        using (var scope = NewDisposeScope())
            HymbaModel.DecoderLayer(_config, _rope, weights, _hidden, _positions, _cache, _angles, options);
        ResetCache(weights.Plan.Index);
    }

    /// <summary>Runs a layer and makes its output the current hidden states.</summary>
    public void Advance(LayerWeights weights, ForwardOptions options)
    {
        using var scope = NewDisposeScope();
        var next = HymbaModel.DecoderLayer(_config, _rope, weights, _hidden, _positions, _cache, _angles, options);
        _hidden.Dispose();
        _hidden = next.DetachFromDisposeScope();
    }

    private void ResetCache(int layer)
    {
        _cache.Kv[layer]?.Dispose();
        _cache.Kv[layer] = null;
        _cache.ConvStates[layer]?.Dispose();
        _cache.ConvStates[layer] = null;
        _cache.SsmStates[layer]?.Dispose();
        _cache.SsmStates[layer] = null;
    }

    public void Dispose()
    {
        _hidden.Dispose();
        _cache.Dispose();
        _rope.Dispose();
        if (_angles is { } a) { a.Cos.Dispose(); a.Sin.Dispose(); }
    }
}
