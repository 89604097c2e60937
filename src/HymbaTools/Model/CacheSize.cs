namespace HymbaTools.Model;

/// <summary>
/// Inference-cache size under the convention of docs/architecture.md §4.2: a 16-bit cache; K and V
/// only for KV-owning layers, M + S tokens in global layers and M + min(S, W) in sliding layers; plus
/// the conv state (k_conv pre-conv vectors) and the SSM state of every layer.
/// </summary>
public static class CacheSize
{
    public const int BytesPerValue = 2;

    public sealed record Breakdown(long SequenceLength, long KvBytes, long SsmStateBytes, long ConvStateBytes)
    {
        public long Total => KvBytes + SsmStateBytes + ConvStateBytes;
    }

    /// <summary>How K/V ownership and windows are counted.</summary>
    public enum Variant
    {
        /// <summary>The model as configured.</summary>
        AsConfigured,
        /// <summary>Every layer owns its K/V (no cross-layer sharing), windows as configured.</summary>
        NoKvSharing,
        /// <summary>Every layer owns its K/V and attends globally.</summary>
        NoSharingAllGlobal,
    }

    public static Breakdown Compute(HymbaConfig c, long sequenceLength, Variant variant = Variant.AsConfigured)
    {
        long perTokenKv = (long)c.NumKvHeads * (c.HeadDim + c.VHeadDim) * BytesPerValue;
        long m = c.NumMemoryTokens;
        long kv = 0;
        foreach (var layer in c.Layers)
        {
            bool owns = variant != Variant.AsConfigured || layer.OwnsKv;
            if (!owns) continue;
            bool sliding = variant != Variant.NoSharingAllGlobal && layer.Attention == AttentionKind.Sliding;
            long tokens = m + (sliding ? Math.Min(sequenceLength, layer.Window!.Value) : sequenceLength);
            kv += perTokenKv * tokens;
        }
        long ssm = (long)c.NumLayers * c.DInner * c.SsmStateSize * BytesPerValue;
        long conv = (long)c.NumLayers * c.DInner * c.ConvKernel * BytesPerValue;
        return new Breakdown(sequenceLength, kv, ssm, conv);
    }

    public const string Convention =
        "16-bit cache; K/V for KV-owning layers only (global: M+S tokens, sliding: M+min(S,W) tokens, M = meta tokens); " +
        "plus conv state (k_conv values) and SSM state (d_state values) per inner channel of every layer";
}
