namespace HymbaTools.Quantization.BitBudget;

public sealed record KnapsackOption(GgmlType Type, long Bytes, double Cost);

/// <summary>One tensor: its options (types that fit it, with their bytes and measured costs).</summary>
public sealed record KnapsackItem(string Name, IReadOnlyList<KnapsackOption> Options);

/// <summary>
/// Chooses one option per item so that the total bytes stay at or under the budget (never a byte over) and the
/// total cost is minimal. Exact when the bytes above every item's smallest option, counted in units of the gcd of
/// all option sizes, make a table of at most <see cref="MaxTableCells"/> cells (dynamic programming over that
/// capacity: Hymba-1.5B at 4.9 bits per weight, the example model at any budget); otherwise the multiple-choice
/// knapsack's greedy along each item's lower convex hull of (bytes, cost), then single upgrades and
/// downgrade-for-upgrade swaps that lower the total while the budget holds. Ties break by item order then option
/// order, so the choice is the same on every run.
/// </summary>
public static class BudgetKnapsack
{
    public const long MaxTableCells = 100_000_000;

    /// <summary>The chosen option per item (in item order), or null when even the smallest options exceed the budget.</summary>
    public static KnapsackOption[]? Solve(IReadOnlyList<KnapsackItem> items, long budget) => Solve(items, budget, exactAllowed: true);

    /// <param name="exactAllowed">false: the greedy and local search even when the table would fit (tests)</param>
    internal static KnapsackOption[]? Solve(IReadOnlyList<KnapsackItem> items, long budget, bool exactAllowed)
    {
        var frontiers = items.Select(i => Frontier(i.Options)).ToArray();
        var chosen = frontiers.Select(f => f[0]).ToArray();
        long used = chosen.Sum(o => o.Bytes);
        if (used > budget) return null;
        if (exactAllowed && Exact(frontiers, budget - used) is { } exact) return exact;

        // Greedy over hull steps, best cost decrease per byte first.
        var steps = new List<(int Item, int From, double Efficiency)>();
        var hulls = new List<List<KnapsackOption>>();
        for (int i = 0; i < frontiers.Length; i++)
        {
            var hull = Hull(frontiers[i]);
            for (int s = 0; s + 1 < hull.Count; s++)
                steps.Add((i, s, (hull[s].Cost - hull[s + 1].Cost) / (hull[s + 1].Bytes - hull[s].Bytes)));
            hulls.Add(hull);
        }
        var position = new int[items.Count];
        var blocked = new bool[items.Count];
        foreach (var (item, from, _) in steps.OrderByDescending(s => s.Efficiency).ThenBy(s => s.Item).ThenBy(s => s.From))
        {
            if (blocked[item] || position[item] != from) continue;
            var next = hulls[item][from + 1];
            long delta = next.Bytes - chosen[item].Bytes;
            if (used + delta > budget) { blocked[item] = true; continue; }
            used += delta;
            chosen[item] = next;
            position[item] = from + 1;
        }

        // Local improvement: the best single move that fits, else the best downgrade-for-upgrade swap.
        double epsilon = 1e-12 * (1 + chosen.Sum(o => o.Cost));
        for (int round = 0; round < 10_000; round++)
        {
            if (BestMove(frontiers, chosen, budget - used, epsilon) is { } move)
            {
                used += move.Option.Bytes - chosen[move.Item].Bytes;
                chosen[move.Item] = move.Option;
                continue;
            }
            if (BestSwap(frontiers, chosen, budget - used, epsilon) is not { } swap) break;
            used += swap.Down.Bytes - chosen[swap.DownItem].Bytes + swap.Up.Bytes - chosen[swap.UpItem].Bytes;
            chosen[swap.DownItem] = swap.Down;
            chosen[swap.UpItem] = swap.Up;
        }
        return chosen;
    }

    /// <summary>Dynamic programming over the capacity above the smallest options, or null when the table would be too large.</summary>
    private static KnapsackOption[]? Exact(List<KnapsackOption>[] frontiers, long spare)
    {
        long unit = 0;
        foreach (var f in frontiers)
            foreach (var o in f) unit = Gcd(unit, o.Bytes - f[0].Bytes);
        if (unit == 0) return frontiers.Select(f => f[0]).ToArray();
        long capacity = spare / unit;
        if ((capacity + 1) * frontiers.Length > MaxTableCells) return null;
        int cells = (int)capacity + 1;
        // best[c]: least cost of the items so far with at most c units above their smallest options.
        var best = new double[cells];
        var next = new double[cells];
        var choice = new byte[frontiers.Length * (long)cells];
        for (int i = 0; i < frontiers.Length; i++)
        {
            var f = frontiers[i];
            long row = (long)i * cells;
            for (int c = 0; c < cells; c++)
            {
                double least = double.PositiveInfinity;
                int pick = 0;
                for (int k = 0; k < f.Count; k++)
                {
                    long w = (f[k].Bytes - f[0].Bytes) / unit;
                    if (w > c) break;   // frontier options grow in bytes
                    double total = best[c - w] + f[k].Cost;
                    if (total < least) { least = total; pick = k; }
                }
                next[c] = least;
                choice[row + c] = (byte)pick;
            }
            (best, next) = (next, best);
        }
        var result = new KnapsackOption[frontiers.Length];
        long at = capacity;
        for (int i = frontiers.Length - 1; i >= 0; i--)
        {
            var o = frontiers[i][choice[(long)i * cells + at]];
            result[i] = o;
            at -= (o.Bytes - frontiers[i][0].Bytes) / unit;
        }
        return result;
    }

    private static long Gcd(long a, long b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return Math.Abs(a);
    }

    /// <summary>Options by bytes, keeping only those cheaper in cost than every smaller one (the Pareto frontier).</summary>
    private static List<KnapsackOption> Frontier(IReadOnlyList<KnapsackOption> options)
    {
        if (options.Count == 0) throw new ArgumentException("an item without options");
        var frontier = new List<KnapsackOption>();
        foreach (var o in options.Select((o, i) => (o, i)).OrderBy(p => p.o.Bytes).ThenBy(p => p.o.Cost).ThenBy(p => p.i).Select(p => p.o))
            if (frontier.Count == 0 || o.Cost < frontier[^1].Cost) frontier.Add(o);
        return frontier;
    }

    /// <summary>The lower convex hull of a frontier: the cost decrease per byte shrinks from step to step.</summary>
    private static List<KnapsackOption> Hull(List<KnapsackOption> frontier)
    {
        var hull = new List<KnapsackOption>();
        foreach (var p in frontier)
        {
            while (hull.Count >= 2 && Efficiency(hull[^2], hull[^1]) <= Efficiency(hull[^1], p)) hull.RemoveAt(hull.Count - 1);
            hull.Add(p);
        }
        return hull;
    }

    private static double Efficiency(KnapsackOption a, KnapsackOption b) => (a.Cost - b.Cost) / (b.Bytes - a.Bytes);

    private static (int Item, KnapsackOption Option)? BestMove(List<KnapsackOption>[] frontiers, KnapsackOption[] chosen, long free, double epsilon)
    {
        (int Item, KnapsackOption Option)? best = null;
        double bestGain = epsilon;
        for (int i = 0; i < frontiers.Length; i++)
            foreach (var o in frontiers[i])
            {
                double gain = chosen[i].Cost - o.Cost;
                if (gain > bestGain && o.Bytes - chosen[i].Bytes <= free) { bestGain = gain; best = (i, o); }
            }
        return best;
    }

    private static (int DownItem, KnapsackOption Down, int UpItem, KnapsackOption Up)? BestSwap(List<KnapsackOption>[] frontiers, KnapsackOption[] chosen, long free, double epsilon)
    {
        (int, KnapsackOption, int, KnapsackOption)? best = null;
        double bestGain = epsilon;
        for (int d = 0; d < frontiers.Length; d++)
            foreach (var down in frontiers[d])
            {
                if (down.Bytes >= chosen[d].Bytes) continue;
                long freed = chosen[d].Bytes - down.Bytes;
                double loss = down.Cost - chosen[d].Cost;
                for (int u = 0; u < frontiers.Length; u++)
                {
                    if (u == d) continue;
                    foreach (var up in frontiers[u])
                    {
                        if (up.Bytes <= chosen[u].Bytes || up.Bytes - chosen[u].Bytes > free + freed) continue;
                        double gain = chosen[u].Cost - up.Cost - loss;
                        if (gain > bestGain) { bestGain = gain; best = (d, down, u, up); }
                    }
                }
            }
        return best;
    }
}
