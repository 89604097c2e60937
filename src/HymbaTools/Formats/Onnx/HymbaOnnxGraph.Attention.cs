using HymbaTools.Model;
using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;

namespace HymbaTools.Formats.Onnx;

/// <summary>The attention heads of a layer: GQA over the meta-token constants and the text cache.</summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <summary>
    /// Attention heads of one layer on h [B, T, d]; returns [B, T, H*d_v]. The keys a query reads are the meta tokens'
    /// (constants) followed by the text keys of the producer's cache; the two score blocks are joined, so the cache is
    /// never copied to put the constants in front of it:
    /// <code>
    ///   q = RoPE(h·Wq)                                     [B, H_kv, g·T, d_h]   (head h = kv·g + j reads KV head kv)
    ///   scores = [ q·metaKᵀ | pad(q)·presentKᵀ ] / √d_h    [B, H_kv, g·T, M + Tk]
    ///   p = softmax(scores + mask)                          mask: causal; sliding layers also the window over text keys
    ///   out = p[.., :M]·metaV + p[.., M:]·presentV          [B, H_kv, g·T, d_v]
    /// </code>
    /// </summary>
    private string MakeAttention(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, kvHeads = c.NumKvHeads, group = c.GqaGroupSize, width = HymbaOnnxNames.CacheHeadSize(c);
        long m = c.NumMemoryTokens;
        var q = Rope(MakeLinear(h, W(StoredRole.AttnQ, i)), c.NumHeads);
        q = _g.Op("Transpose", [_g.Op("Reshape", [q, Shape(_batch, _newTokens, kvHeads, group, c.HeadDim)])], [Ints("perm", 0, 2, 3, 1, 4)]);
        var queries = _g.Op("Reshape", [q, _g.Int64s(0, 0, -1, c.HeadDim)]);                                 // [B, H_kv, g*T, d_h]
        if (plan.OwnsKv) MakeKvOwner(plan, h);
        var (keys, values) = _kv[plan.KvSource];

        var textScores = MakeScores(PadLast(queries, width - c.HeadDim), keys);
        var scores = HasMetaTokens
            ? _g.Op("Concat", [MakeScores(queries, HymbaOnnxNames.MetaKeys(plan.KvSource), keyRank: 3), textScores], [Int("axis", -1)])
            : textScores;
        var probabilities = _g.Op("Softmax", [_g.Op("Add", [scores, MakeMask(plan)])], [Int("axis", -1)]);  // [B, H_kv, g*T, M+Tk]
        var output = HasMetaTokens
            ? _g.Op("Add", [
                _g.Op("MatMul", [_g.Op("Slice", [probabilities, _g.Int64s(0), _g.Int64s(m), _g.Int64s(-1)]), HymbaOnnxNames.MetaValues(plan.KvSource)]),
                _g.Op("MatMul", [_g.Op("Slice", [probabilities, _g.Int64s(m), _g.Int64s(long.MaxValue), _g.Int64s(-1)]), values])])
            : _g.Op("MatMul", [probabilities, values]);                                                        // [B, H_kv, g*T, width]
        if (width > c.VHeadDim) output = _g.Op("Slice", [output, _g.Int64s(0), _g.Int64s(c.VHeadDim), _g.Int64s(-1)]);
        output = _g.Op("Reshape", [output, Shape(_batch, kvHeads, group, _newTokens, c.VHeadDim)]);
        output = _g.Op("Transpose", [output], [Ints("perm", 0, 3, 1, 2, 4)]);                                 // [B, T, H_kv, g, d_v]
        return _g.Op("Reshape", [output, Shape(_batch, _newTokens, c.NumHeads * c.VHeadDim)]);
    }

    /// <summary>
    /// K/V of a KV-owning layer: this call's post-RoPE keys and its values, padded to the cache head width, appended to
    /// the past; the present is exactly past + new (what genai preallocates).
    /// </summary>
    private void MakeKvOwner(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, width = HymbaOnnxNames.CacheHeadSize(c);
        var k = Rope(MakeLinear(h, W(StoredRole.AttnK, i)), c.NumKvHeads);
        k = _g.Op("Transpose", [_g.Op("Reshape", [k, Shape(_batch, _newTokens, c.NumKvHeads, c.HeadDim)])], [Ints("perm", 0, 2, 1, 3)]);
        var v = _g.Op("Reshape", [MakeLinear(h, W(StoredRole.AttnV, i)), Shape(_batch, _newTokens, c.NumKvHeads, c.VHeadDim)]);
        v = _g.Op("Transpose", [v], [Ints("perm", 0, 2, 1, 3)]);
        var keys = _g.Op("Concat", [HymbaOnnxNames.PastKey(i), PadLast(k, width - c.HeadDim)], [Int("axis", 2)], HymbaOnnxNames.PresentKey(i));
        var values = _g.Op("Concat", [HymbaOnnxNames.PastValue(i), PadLast(v, width - c.VHeadDim)], [Int("axis", 2)], HymbaOnnxNames.PresentValue(i));
        _kv[i] = (keys, values);
    }

    /// <summary>
    /// Additive mask [g·T, M + Tk] over a layer's keys (meta tokens first), rows repeated for the g query heads of a KV
    /// head: 0 where key position b may be read by query position a (b &lt;= a, and for sliding layers a - b &lt;= window
    /// or b a meta token), -inf elsewhere. Built once per kind of layer and kind of cache.
    /// </summary>
    private string MakeMask(LayerPlan plan)
    {
        bool bounded = _c.SlidingKvWindows.ContainsKey(plan.KvSource);
        var key = (bounded, plan.Attention, plan.Window);
        if (_masks.TryGetValue(key, out var cached)) return cached;
        long m = _c.NumMemoryTokens;
        var textKeys = KeyPositions(bounded);
        var keyPositions = HasMetaTokens ? _g.Op("Concat", [_g.Int64s([.. Enumerable.Range(0, (int)m).Select(p => (long)p)]), textKeys], [Int("axis", 0)]) : textKeys;
        var queries = Unsqueeze(_positions, 1);                        // [T, 1]
        var keys = Unsqueeze(keyPositions, 0);                         // [1, M + Tk]
        var allowed = _g.Op("LessOrEqual", [keys, queries]);
        if (plan.Attention == AttentionKind.Sliding && plan.Window is { } window)
        {
            var near = _g.Op("LessOrEqual", [_g.Op("Sub", [queries, keys]), _g.Int64s(window)]);
            if (HasMetaTokens) near = _g.Op("Or", [near, _g.Op("Less", [keys, _g.Int64s(m)])]);
            allowed = _g.Op("And", [allowed, near]);
        }
        var mask = _g.Op("Where", [allowed, _g.Float(0f), _g.Float(float.NegativeInfinity)]);
        if (_c.GqaGroupSize > 1) mask = _g.Op("Tile", [mask, _g.Int64s(_c.GqaGroupSize, 1)]);
        _masks[key] = mask;
        return mask;
    }

    /// <summary>
    /// Absolute positions of the text keys a cache holds: a contiguous run ending at this call's last position (a
    /// runner may have dropped the oldest keys of bounded caches; all bounded caches then hold the same number, as do
    /// all others), taken from the first KV owner of that kind.
    /// </summary>
    private string KeyPositions(bool bounded)
    {
        if (_keyPositions.TryGetValue(bounded, out var cached)) return cached;
        int owner = _c.KvOwners.First(l => _c.SlidingKvWindows.ContainsKey(l.Index) == bounded).Index;
        var length = _g.Op("Gather", [_g.Op("Shape", [_kv[owner].Keys]), _g.Int64s(2)]);
        var start = _g.Op("Sub", [_endPosition, length]);
        return _keyPositions[bounded] = _g.Op("Range", [_g.Op("Squeeze", [start]), _g.Op("Squeeze", [_endPosition]), _g.Int64Scalar(1)]);
    }

    /// <summary>
    /// Rotate-half RoPE on [B, T, heads·d_h] (the op set's RotaryEmbedding or its decomposition): cos/sin tables of float32 angles
    /// position × inv_freq (the reference's precision) for every position up to <see cref="MaxPositions"/>, read from
    /// this call's first position on.
    /// </summary>
    private string Rope(string x, int heads)
    {
        if (!_c.Rope) return x;
        return _ops.Rope(x, heads);
    }

    private (string Cos, string Sin) RopeTables()
    {
        const string cos = "rope.cos_cache", sin = "rope.sin_cache";
        if (_g.Graph.Initializer.Any(t => t.Name == cos)) return (cos, sin);
        var inv = RotaryEmbedding.InverseFrequencies(_c);
        long positions = MaxPositions(_c);
        var cosValues = new float[positions * inv.Length];
        var sinValues = new float[positions * inv.Length];
        for (long p = 0; p < positions; p++)
            for (int j = 0; j < inv.Length; j++)
            {
                float angle = (float)p * inv[j];
                cosValues[p * inv.Length + j] = MathF.Cos(angle);
                sinValues[p * inv.Length + j] = MathF.Sin(angle);
            }
        return (_g.Floats(cos, [positions, inv.Length], cosValues), _g.Floats(sin, [positions, inv.Length], sinValues));
    }
}
