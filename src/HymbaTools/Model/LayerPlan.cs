namespace HymbaTools.Model;

public enum AttentionKind { Global, Sliding }

/// <summary>A contiguous range of rows of <c>mamba.in_proj.weight</c>.</summary>
public readonly record struct RowBlock(int Start, int Length)
{
    public int End => Start + Length;
    public override string ToString() => Length == 0 ? "-" : $"{Start}..{End - 1}";
}

/// <summary>
/// Row blocks of a layer's in_proj, in the order the official code splits them: [Q | K | V | x | z]
/// for a KV-owning layer and [Q | x | z] for a KV consumer (docs/architecture.md §2.3).
/// </summary>
public sealed record InProjLayout(RowBlock Q, RowBlock K, RowBlock V, RowBlock X, RowBlock Z)
{
    public int Rows => Z.End;

    public static InProjLayout Create(int qRows, int kRows, int vRows, int dInner, bool ownsKv)
    {
        var q = new RowBlock(0, qRows);
        var k = new RowBlock(q.End, ownsKv ? kRows : 0);
        var v = new RowBlock(k.End, ownsKv ? vRows : 0);
        var x = new RowBlock(v.End, dInner);
        var z = new RowBlock(x.End, dInner);
        return new InProjLayout(q, k, v, x, z);
    }
}

/// <summary>What one decoder layer does: its attention kind and window, whose K/V it uses, its in_proj rows.</summary>
public sealed record LayerPlan(int Index, AttentionKind Attention, int? Window, int KvSource, InProjLayout InProj)
{
    public bool OwnsKv => KvSource == Index;

    public string KvRole(IReadOnlyList<LayerPlan> all)
    {
        if (!OwnsKv) return $"consumer of {KvSource}";
        var consumers = all.Where(l => l.KvSource == Index && l.Index != Index).Select(l => l.Index).ToList();
        return consumers.Count == 0 ? "owner" : $"producer for {string.Join(",", consumers)}";
    }
}
