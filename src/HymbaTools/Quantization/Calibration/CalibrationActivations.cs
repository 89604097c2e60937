using HymbaTools.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Calibration;

/// <summary>
/// Calibration chunks pushed through a model one decoder layer at a time. Every chunk is its own sequence (the meta
/// tokens in front, its own cache for the KV consumers that read their producer's keys) and runs on its own libtorch
/// worker thread, single-threaded inside libtorch: the chunks use every core, each chunk's arithmetic is the same at
/// any thread count, and the statistics are merged in chunk order, so the bytes a walk writes do not depend on
/// --threads (see <see cref="ChunkRecording"/>). One chunk at a time also bounds the selective scan's [T, d_in, N]
/// temporaries to one sequence's. Blocks of 4 MB and more are mapped on their own while a walk runs
/// (<see cref="Common.NativeHeap.ReturnBlocksFrom"/>): freed by one worker thread's layer, they would otherwise stay in
/// its heap arena (2-layer 1.5B cut: peak resident 2.04 GB without, 1.61 GB with, about 3 % more CPU time).
/// A layer can run twice (once to measure its inputs, once rounded); its cache entries are reset in between.
/// </summary>
internal sealed class CalibrationActivations : IDisposable
{
    private readonly HymbaConfig _config;
    private readonly RotaryEmbedding _rope;
    private readonly HymbaCache[] _caches;
    private readonly Tensor[] _hidden;
    private readonly long[] _positions;
    private readonly (Tensor Cos, Tensor Sin)? _angles;
    private readonly int _threads;

    public CalibrationActivations(IHymbaTensorSource source, long[][] chunks, int? threads = null)
    {
        if (chunks.Length == 0 || chunks.Any(c => c.Length != chunks[0].Length || c.Length == 0)) throw new ArgumentException("calibration chunks must be non-empty and of one length");
        var c = _config = source.Config;
        _threads = threads ?? Common.ComputeThreads.Count;
        Common.NativeHeap.ReturnBlocksFrom(4 << 20);
        using var grad = no_grad();
        _rope = new RotaryEmbedding(c);
        _caches = [.. chunks.Select(_ => new HymbaCache(c, 1, DecodeWindowMode.MatchFullForward))];
        int length = chunks[0].Length;
        long meta = c.NumMemoryTokens;
        MetaSteps = meta;
        _hidden = new Tensor[chunks.Length];
        using (var scope = NewDisposeScope())
        {
            var embedding = TorchMemory.Create([c.VocabSize, c.HiddenSize], span => source.CopyToFloat32(HymbaTensorCatalog.EmbedTokens, span));
            var tokens = meta > 0 ? TorchMemory.Create([meta, c.HiddenSize], span => source.CopyToFloat32(HymbaTensorCatalog.MemoryTokens, span)) : null;
            for (int i = 0; i < chunks.Length; i++)
            {
                var x = embedding.index_select(0, torch.tensor(chunks[i], [length])).unsqueeze(0);
                if (tokens is not null) x = torch.cat([tokens.unsqueeze(0), x], 1);
                _hidden[i] = x.contiguous().DetachFromDisposeScope();
            }
        }
        _positions = [.. Enumerable.Range(0, (int)(meta + length)).Select(p => (long)p)];
        _angles = _rope.Enabled ? _rope.Angles(_positions) : null;
    }

    /// <summary>Positions of the meta tokens at the front of every chunk.</summary>
    public long MetaSteps { get; }

    /// <summary>The current hidden states of each chunk [1, M + T, d] (the next layer's input), in chunk order.</summary>
    public IReadOnlyList<Tensor> Hidden => _hidden;

    /// <summary>Runs a layer on the current hidden states without moving on (to measure its inputs into <paramref name="recording"/>); its cache entries are reset after.</summary>
    public void Probe(LayerWeights weights, ChunkRecording recording)
    {
        Run(weights, recording, _hidden.Length, Use.Drop);
        ResetCache(weights.Plan.Index);
    }

    /// <summary>Runs a layer and makes its output the current hidden states (recording into <paramref name="recording"/> when given).</summary>
    public void Advance(LayerWeights weights, ChunkRecording? recording = null) => Run(weights, recording, _hidden.Length, Use.Keep);

    /// <summary>The layer's outputs [1, M + T, d] for the first <paramref name="chunks"/> chunks, without moving on (the caller disposes them; the layer's cache entries are reset).</summary>
    public Tensor[] Outputs(LayerWeights weights, int chunks, ChunkRecording? recording = null)
    {
        var outputs = Run(weights, recording, Math.Min(chunks, _hidden.Length), Use.Return);
        ResetCache(weights.Plan.Index);
        return outputs;
    }

    /// <summary>
    /// One chunk's output of a layer with <paramref name="weights"/>, on a private cache that borrows the chunk's K/V
    /// producer entry: the chunk's own state is only read, so several of these can run at once (the caller disposes the output).
    /// </summary>
    public Tensor OutputOf(LayerWeights weights, int chunk)
    {
        var plan = weights.Plan;
        using var fork = new HymbaCache(_config, 1, DecodeWindowMode.MatchFullForward);
        if (!plan.OwnsKv) fork.Kv[plan.KvSource] = _caches[chunk].Kv[plan.KvSource];
        try
        {
            using var scope = NewDisposeScope();
            return HymbaModel.DecoderLayer(_config, _rope, weights, _hidden[chunk], _positions, fork, _angles, ForwardOptions.Default).DetachFromDisposeScope();
        }
        finally
        {
            if (!plan.OwnsKv) fork.Kv[plan.KvSource] = null;   // borrowed: not the fork's to dispose
        }
    }

    /// <summary>What a pass does with the layer's outputs: make them the hidden states, drop them, or hand them back.</summary>
    private enum Use { Keep, Drop, Return }

    private Tensor[] Run(LayerWeights weights, ChunkRecording? recording, int chunks, Use use)
    {
        var outputs = new Tensor[use == Use.Return ? chunks : 0];
        TorchWorkers.For(chunks, _threads, i =>
        {
            try
            {
                Common.Interruption.ThrowIfRequested();
                using var scope = NewDisposeScope();
                var next = HymbaModel.DecoderLayer(_config, _rope, weights, _hidden[i], _positions, _caches[i], _angles,
                    recording is null ? ForwardOptions.Default : new ForwardOptions { Recorder = recording.For(i) });
                if (use == Use.Keep)
                {
                    _hidden[i].Dispose();
                    _hidden[i] = next.DetachFromDisposeScope();
                }
                else if (use == Use.Return) outputs[i] = next.DetachFromDisposeScope();
            }
            catch
            {
                recording?.Abandon();   // chunks waiting for this one's rows stop waiting
                throw;
            }
        });
        recording?.Complete();
        return outputs;
    }

    private void ResetCache(int layer)
    {
        foreach (var cache in _caches)
        {
            cache.Kv[layer]?.Dispose();
            cache.Kv[layer] = null;
            cache.ConvStates[layer]?.Dispose();
            cache.ConvStates[layer] = null;
            cache.SsmStates[layer]?.Dispose();
            cache.SsmStates[layer] = null;
        }
    }

    public void Dispose()
    {
        foreach (var h in _hidden) h.Dispose();
        foreach (var cache in _caches) cache.Dispose();
        _rope.Dispose();
        if (_angles is { } a) { a.Cos.Dispose(); a.Sin.Dispose(); }
    }
}
