using HymbaTools.Model;
using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;

namespace HymbaTools.Formats.Onnx;

/// <summary>The attention heads of a layer: GQA over the meta-token constants and the text cache.</summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <summary>
    /// Attention heads of one layer on h [BT, d]; returns [BT, H*d_v]. The keys a query reads are the meta tokens'
    /// (constants) followed by the text keys of the producer's cache; the two score blocks are joined, so the
    /// cache is never copied to put the constants in front of it:
    /// <code>
    ///   q = RoPE(h·Wq)                                   [B, H_kv, g·T, d_h]   (head h = kv·g + j reads KV head kv)
    ///   scores = [ q·metaKᵀ | pad(q)·presentKᵀ ] / √d_h  [B, H_kv, g·T, M + Tk]
    ///   p = softmax(scores + mask)                        mask: causal; sliding layers also the window over text keys
    ///   out = p[.., :M]·metaV + p[.., M:]·presentV        [B, H_kv, g·T, d_v]
    /// </code>
    /// </summary>
    private string MakeAttention(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, kvHeads = c.NumKvHeads, group = c.GqaGroupSize, width = HymbaOnnxNames.CacheHeadSize(c);
        long m = c.NumMemoryTokens;
        var q = _g.Op("Reshape", [MakeLinear(h, W(StoredRole.AttnQ, i)), Shape(_batch, _newTokens, kvHeads, group, c.HeadDim)]);
        q = Rope(_g.Op("Transpose", [q], [Ints("perm", 0, 2, 3, 1, 4)]));
        if (plan.OwnsKv) MakeKvOwner(plan, h);
        var (keys, values, _) = _kv[plan.KvSource];

        var queries = _g.Op("Reshape", [q, _g.Int64s(0, 0, -1, c.HeadDim)]);                                  // [B, H_kv, g*T, d_h]
        var textScores = _g.Op("MatMul", [PadLast(queries, width - c.HeadDim), _g.Op("Transpose", [keys], [Ints("perm", 0, 1, 3, 2)])]);
        var scores = HasMetaTokens
            ? _g.Op("Concat", [_g.Op("MatMul", [queries, HymbaOnnxNames.MetaKeysTransposed(plan.KvSource)]), textScores], [Int("axis", -1)])
            : textScores;
        scores = _g.Op("Mul", [scores, _g.Float((float)(1.0 / Math.Sqrt(c.HeadDim)))]);
        var grouped = _g.Op("Reshape", [scores, Shape(_batch, kvHeads, group, _newTokens, -1)]);             // [B, H_kv, g, T, M+Tk]
        var probabilities = _g.Op("Softmax", [_g.Op("Add", [grouped, MakeMask(plan)])], [Int("axis", -1)]);
        var flat = _g.Op("Reshape", [probabilities, _g.Op("Shape", [scores])]);
        var output = HasMetaTokens
            ? _g.Op("Add", [
                _g.Op("MatMul", [_g.Op("Slice", [flat, _g.Int64s(0), _g.Int64s(m), _g.Int64s(-1)]), HymbaOnnxNames.MetaValues(plan.KvSource)]),
                _g.Op("MatMul", [_g.Op("Slice", [flat, _g.Int64s(m), _g.Int64s(long.MaxValue), _g.Int64s(-1)]), values])])
            : _g.Op("MatMul", [flat, values]);                                                                  // [B, H_kv, g*T, width]
        if (width > c.VHeadDim) output = _g.Op("Slice", [output, _g.Int64s(0), _g.Int64s(c.VHeadDim), _g.Int64s(-1)]);
        output = _g.Op("Reshape", [output, Shape(_batch, kvHeads, group, _newTokens, c.VHeadDim)]);
        output = _g.Op("Transpose", [output], [Ints("perm", 0, 3, 1, 2, 4)]);                                 // [B, T, H_kv, g, d_v]
        return _g.Op("Reshape", [output, _g.Int64s(-1, c.NumHeads * c.VHeadDim)]);
    }

    /// <summary>
    /// K/V of a KV-owning layer: this call's post-RoPE keys and its values, padded to the cache head width, appended
    /// to the past; the present is exactly past + new (what genai preallocates). Sets the positions of the cached keys.
    /// </summary>
    private void MakeKvOwner(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, width = HymbaOnnxNames.CacheHeadSize(c);
        var k = _g.Op("Reshape", [MakeLinear(h, W(StoredRole.AttnK, i)), Shape(_batch, _newTokens, c.NumKvHeads, c.HeadDim)]);
        k = Rope(_g.Op("Transpose", [k], [Ints("perm", 0, 2, 1, 3)]));
        var v = _g.Op("Reshape", [MakeLinear(h, W(StoredRole.AttnV, i)), Shape(_batch, _newTokens, c.NumKvHeads, c.VHeadDim)]);
        v = _g.Op("Transpose", [v], [Ints("perm", 0, 2, 1, 3)]);
        var keys = _g.Op("Concat", [HymbaOnnxNames.PastKey(i), PadLast(k, width - c.HeadDim)], [Int("axis", 2)], HymbaOnnxNames.PresentKey(i));
        var values = _g.Op("Concat", [HymbaOnnxNames.PastValue(i), PadLast(v, width - c.VHeadDim)], [Int("axis", 2)], HymbaOnnxNames.PresentValue(i));

        // The cache holds a contiguous run of text keys ending at this call's last position (a runner may have
        // dropped older keys of a sliding layer), so key j sits at end - length + j.
        var length = _g.Op("Gather", [_g.Op("Shape", [keys]), _g.Int64s(2)]);
        var index = _g.Op("Range", [_g.Int64Scalar(0), _g.Op("Squeeze", [length]), _g.Int64Scalar(1)]);
        var positions = _g.Op("Add", [index, _g.Op("Sub", [_endPosition, length])]);
        _kv[i] = (keys, values, positions);
    }

    /// <summary>
    /// Additive mask [T, M + Tk] for a layer over its producer's keys (meta tokens first): 0 where key position b may
    /// be read by query position a (b &lt;= a, and for sliding layers a - b &lt;= window or b a meta token), -inf elsewhere.
    /// </summary>
    private string MakeMask(LayerPlan plan)
    {
        var key = (plan.KvSource, plan.Attention, plan.Window);
        if (_masks.TryGetValue(key, out var cached)) return cached;
        long m = _c.NumMemoryTokens;
        var textKeys = _kv[plan.KvSource].Positions;
        var keyPositions = HasMetaTokens ? _g.Op("Concat", [_g.Op("Range", [_g.Int64Scalar(0), _g.Int64Scalar(m), _g.Int64Scalar(1)]), textKeys], [Int("axis", 0)]) : textKeys;
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
        _masks[key] = mask;
        return mask;
    }

    /// <summary>x with <paramref name="zeros"/> zeros appended to its last axis (rank 4), or x itself.</summary>
    private string PadLast(string x, int zeros) =>
        zeros == 0 ? x : _g.Op("Pad", [x, _g.Int64s(0, 0, 0, 0, 0, 0, 0, zeros)]);
}
