using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>How a sliding-window layer's K/V cache is trimmed during incremental decoding.</summary>
public enum DecodeWindowMode
{
    /// <summary>
    /// Decoding gives the same logits as a full forward over the whole sequence: each query sees the meta
    /// tokens plus itself and the sliding_window previous tokens (the semantics the model was trained with).
    /// </summary>
    MatchFullForward,
    /// <summary>
    /// Reproduces the official generate(): before each decode step the cache is cut to the meta tokens plus
    /// the last sliding_window - 1 tokens, so a decoded query sees one key fewer than the full forward.
    /// </summary>
    OfficialGenerate,
}

/// <summary>K/V cached by one KV-owning layer: post-RoPE keys and values plus the absolute positions they hold.</summary>
internal sealed class KvEntry : IDisposable
{
    public required Tensor Keys { get; set; }     // [B, H_kv, Tk, d_h]
    public required Tensor Values { get; set; }   // [B, H_kv, Tk, d_v]
    /// <summary>Absolute position of each cached key (meta tokens first, then a contiguous text run).</summary>
    public required long[] Positions { get; set; }

    public void Dispose()
    {
        Keys.Dispose();
        Values.Dispose();
    }
}

/// <summary>
/// The incremental-decoding state of one batch of sequences (docs/architecture.md §4.1): K/V for
/// KV-owning layers only (consumers read their producer's), the last k_conv pre-conv inputs and the SSM
/// state of every layer, and the number of positions processed (meta tokens included).
/// </summary>
public sealed class HymbaCache : IDisposable
{
    internal HymbaCache(HymbaConfig config, int batch, DecodeWindowMode mode)
    {
        Config = config;
        Batch = batch;
        Mode = mode;
        Kv = new KvEntry?[config.NumLayers];
        ConvStates = new Tensor?[config.NumLayers];
        SsmStates = new Tensor?[config.NumLayers];
    }

    public HymbaConfig Config { get; }
    public int Batch { get; }
    public DecodeWindowMode Mode { get; }
    /// <summary>Positions processed so far, meta tokens included (the next token's RoPE position).</summary>
    public long Length { get; internal set; }
    public bool IsEmpty => Length == 0;
    internal KvEntry?[] Kv { get; }
    internal Tensor?[] ConvStates { get; }
    internal Tensor?[] SsmStates { get; }

    /// <summary>
    /// A cache that has seen the meta tokens and nothing else, built from their precomputed state (each row of the
    /// batch the same): the next step continues with text, exactly as after a first call's meta tokens.
    /// </summary>
    internal static HymbaCache AfterMetaTokens(MetaTokenState state, int batch, DecodeWindowMode mode = DecodeWindowMode.MatchFullForward)
    {
        var c = state.Config;
        long m = c.NumMemoryTokens;
        var cache = new HymbaCache(c, batch, mode) { Length = m };
        if (m == 0) return cache;
        long[] positions = [.. Enumerable.Range(0, (int)m).Select(p => (long)p)];
        Tensor Rows(float[] data, params long[] shape)
        {
            using var one = torch.tensor(data, shape);
            return one.unsqueeze(0).expand([batch, .. shape]).contiguous();
        }
        foreach (var (layer, kv) in state.KeyValues)
            cache.Kv[layer] = new KvEntry
            {
                Keys = Rows(kv.Keys, c.NumKvHeads, m, c.HeadDim),
                Values = Rows(kv.Values, c.NumKvHeads, m, c.VHeadDim),
                Positions = positions,
            };
        foreach (var plan in c.Layers)
        {
            // The reference's conv state holds k_conv inputs, the oldest of which the next step no longer reads.
            using var recent = Rows(state.ConvStates[plan.Index], c.DInner, c.ConvKernel - 1);
            using var unread = torch.zeros(batch, c.DInner, 1);
            cache.ConvStates[plan.Index] = torch.cat([unread, recent], 2);
            cache.SsmStates[plan.Index] = Rows(state.SsmStates[plan.Index], c.DInner, c.SsmStateSize);
        }
        return cache;
    }

    /// <summary>Number of keys currently cached by a KV-owning layer.</summary>
    public int CachedKeys(int layer) => Kv[layer]?.Positions.Length ?? 0;

    /// <summary>
    /// Drops keys no future query can attend. A KV group is trimmed only when all its layers slide; the
    /// window kept depends on the mode (see <see cref="DecodeWindowMode"/>).
    /// </summary>
    internal void TrimAfterStep()
    {
        long m = Config.NumMemoryTokens;
        foreach (var (owner, window) in Config.SlidingKvWindows)
        {
            var entry = Kv[owner];
            if (entry is null) continue;
            long keep = Mode == DecodeWindowMode.MatchFullForward ? window : window - 1;
            long firstKept = Length - keep; // the next query is at position Length
            var positions = entry.Positions;
            int metaCount = positions.TakeWhile(p => p < m).Count();
            int drop = 0;
            for (int i = metaCount; i < positions.Length && positions[i] < firstKept; i++) drop++;
            if (drop == 0) continue;
            var index = torch.tensor(Enumerable.Range(0, positions.Length).Where(i => i < metaCount || i >= metaCount + drop).Select(i => (long)i).ToArray());
            var keys = entry.Keys.index_select(2, index).DetachFromDisposeScope();
            var values = entry.Values.index_select(2, index).DetachFromDisposeScope();
            index.Dispose();
            entry.Keys.Dispose();
            entry.Values.Dispose();
            entry.Keys = keys;
            entry.Values = values;
            entry.Positions = positions.Take(metaCount).Concat(positions.Skip(metaCount + drop)).ToArray();
        }
    }

    public void Dispose()
    {
        foreach (var k in Kv) k?.Dispose();
        foreach (var t in ConvStates) t?.Dispose();
        foreach (var t in SsmStates) t?.Dispose();
    }
}
