using HymbaTools.Model;
using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>The attention heads of a layer: GQA over the meta-token constants and the text cache.</summary>
internal sealed partial class HymbaOnnxGraph
{
    /// <summary>
    /// Attention heads of one layer on h [B, T, d]; returns [B, T, H*d_v]. The keys a query reads are the meta tokens'
    /// (constants) followed by the text keys of the producer's cache; the two score blocks are joined, so the cache is
    /// never copied to put the constants in front of it. The cache stores each head's K‖V row as two entries
    /// (<see cref="HymbaStateLayout"/>); the products read the entries where K and V lie:
    /// <code>
    ///   q = RoPE(h·Wq)                                     [B, H_kv, g·T, d_h]   (head h = kv·g + j reads KV head kv)
    ///   scores = [ q·metaKᵀ | q·Kᵀ ] / √d_h               [B, H_kv, g·T, M + Tk]   q·Kᵀ = Σ over entries holding K
    ///   p = softmax(scores + mask)                          mask: causal; sliding layers also the window over text keys
    ///   out = p[.., :M]·metaV + p[.., M:]·V                 [B, H_kv, g·T, d_v]      p·V = the V columns of p·entry
    /// </code>
    /// </summary>
    private string MakeAttention(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, kvHeads = c.NumKvHeads, group = c.GqaGroupSize;
        long m = c.NumMemoryTokens;
        var q = Rope(MakeLinear(h, W(StoredRole.AttnQ, i)), c.NumHeads);
        q = _g.Op("Transpose", [_g.Op("Reshape", [q, Shape(_batch, _newTokens, kvHeads, group, c.HeadDim)])], [Ints("perm", 0, 2, 3, 1, 4)]);
        var queries = _g.Op("Reshape", [q, _g.Int64s(0, 0, -1, c.HeadDim)]);                                 // [B, H_kv, g*T, d_h]
        if (plan.OwnsKv) MakeKvOwner(plan, h);
        var entries = _kv[plan.KvSource];

        var textScores = MakeEntryScores(queries, entries);
        var scores = HasMetaTokens
            ? _g.Op("Concat", [MakeScores(queries, HymbaOnnxNames.MetaKeys(plan.KvSource), keyRank: 3), textScores], [Int("axis", -1)])
            : textScores;
        var probabilities = _g.Op("Softmax", [_g.Op("Add", [scores, MakeMask(plan)])], [Int("axis", -1)]);  // [B, H_kv, g*T, M+Tk]
        var output = HasMetaTokens
            ? _g.Op("Add", [
                _g.Op("MatMul", [_g.Op("Slice", [probabilities, _g.Int64s(0), _g.Int64s(m), _g.Int64s(-1)]), HymbaOnnxNames.MetaValues(plan.KvSource)]),
                MakeEntryReadout(_g.Op("Slice", [probabilities, _g.Int64s(m), _g.Int64s(long.MaxValue), _g.Int64s(-1)]), entries)])
            : MakeEntryReadout(probabilities, entries);                                                       // [B, H_kv, g*T, d_v]
        output = _g.Op("Reshape", [output, Shape(_batch, kvHeads, group, _newTokens, c.VHeadDim)]);
        output = _g.Op("Transpose", [output], [Ints("perm", 0, 3, 1, 2, 4)]);                                 // [B, T, H_kv, g, d_v]
        return _g.Op("Reshape", [output, Shape(_batch, _newTokens, c.NumHeads * c.VHeadDim)]);
    }

    /// <summary>
    /// q·Kᵀ / √d_h: for each entry holding key columns, the queries' matching columns (zero-padded where the entry holds
    /// values, which then add exact zeros) times the entry, transposed.
    /// </summary>
    private string MakeEntryScores(string queries, KvEntries entries)
    {
        string? sum = null;
        foreach (var (entry, at, first, count) in Overlaps(entries, _state.KeyColumns))
        {
            var part = count == _c.HeadDim ? queries : _g.Op("Slice", [queries, _g.Int64s(first), _g.Int64s(first + count), _g.Int64s(-1)]);
            var product = MakeScores(PadColumns(part, at, _state.EntryWidth - at - count), entry);
            sum = sum is null ? product : _g.Op("Add", [sum, product]);
        }
        return sum!;
    }

    /// <summary>p·V: for each entry holding value columns, p times the entry, narrowed to those columns, joined in order.</summary>
    private string MakeEntryReadout(string probabilities, KvEntries entries)
    {
        var parts = new List<string>();
        foreach (var (entry, at, _, count) in Overlaps(entries, _state.ValueColumns))
        {
            var product = _g.Op("MatMul", [probabilities, entry]);
            parts.Add(count == _state.EntryWidth ? product : _g.Op("Slice", [product, _g.Int64s(at), _g.Int64s(at + count), _g.Int64s(-1)]));
        }
        return parts.Count == 1 ? parts[0] : _g.Op("Concat", [.. parts], [Int("axis", -1)]);
    }

    /// <summary>
    /// The entries a column range of the K‖V row falls into, in order: the entry, where the range's part starts in it,
    /// where the part starts in the range, and its width.
    /// </summary>
    private IEnumerable<(string Entry, int At, int First, int Count)> Overlaps(KvEntries entries, (int Start, int Length) range)
    {
        int w = _state.EntryWidth;
        foreach (var (entry, offset) in new[] { (entries.Key, 0), (entries.Value, w) })
        {
            int from = Math.Max(range.Start, offset), to = Math.Min(range.Start + range.Length, offset + w);
            if (from < to) yield return (entry, from - offset, from - range.Start, to - from);
        }
    }

    /// <summary>
    /// K/V of a KV-owning layer: this call's post-RoPE keys and its values as each head's K‖V row, halved into the key
    /// and value entries (float16 by default), appended to the past. The present is past + new, of a sliding group its
    /// last window + slack keys; attention reads past + new, in float32.
    /// </summary>
    private void MakeKvOwner(LayerPlan plan, string h)
    {
        var c = _c;
        int i = plan.Index, w = _state.EntryWidth;
        var k = _g.Op("Reshape", [Rope(MakeLinear(h, W(StoredRole.AttnK, i)), c.NumKvHeads), Shape(_batch, _newTokens, c.NumKvHeads, c.HeadDim)]);
        var v = _g.Op("Reshape", [MakeLinear(h, W(StoredRole.AttnV, i)), Shape(_batch, _newTokens, c.NumKvHeads, c.VHeadDim)]);
        var rows = _g.Op("Transpose", [_g.Op("Concat", [k, PadColumns(v, 0, 2 * w - c.HeadDim - c.VHeadDim)], [Int("axis", -1)])], [Ints("perm", 0, 2, 1, 3)]);
        bool f16 = _state.KeyValueType == OnnxStateType.F16;
        if (f16) rows = _g.Op("Cast", [rows], [Int("to", (long)DataType.Float16)]);
        var halves = _g.Ops("Split", [rows, _g.Int64s(w, w)], 2, [Int("axis", -1)]);                          // [B, H_kv, T, w] each
        long? bound = c.SlidingKvWindows.ContainsKey(i) ? _state.SlidingCacheKeys : null;
        string Entry(string half, string past, string present)
        {
            var all = _g.Op("Concat", [past, half], [Int("axis", 2)], bound is null ? present : null);
            if (bound is { } keys) _g.Op("Slice", [all, _g.Int64s(-keys), _g.Int64s(long.MaxValue), _g.Int64s(2)], output: present);
            return f16 ? _g.Op("Cast", [all], [Int("to", (long)DataType.Float)]) : all;
        }
        _kv[i] = new KvEntries(
            Entry(halves[0], HymbaOnnxNames.PastKey(i), HymbaOnnxNames.PresentKey(i)),
            Entry(halves[1], HymbaOnnxNames.PastValue(i), HymbaOnnxNames.PresentValue(i)));
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
        var length = _g.Op("Gather", [_g.Op("Shape", [_kv[owner].Key]), _g.Int64s(2)]);
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

/// <summary>What attention reads of a KV owner's cache: its key and value entries, past + new, float32 [B, H_kv, Tk, w].</summary>
internal sealed record KvEntries(string Key, string Value);
