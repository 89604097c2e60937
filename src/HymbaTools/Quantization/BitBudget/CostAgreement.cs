using System.Globalization;
using System.Text;
using HymbaTools.Model;

namespace HymbaTools.Quantization.BitBudget;

/// <summary>The plan a budget chooses by each measure, both scored with the reference measure (the costs are additive).</summary>
public sealed record PlanScore(double TargetBitsPerWeight, double ReferenceTotal, double CandidateTotal)
{
    /// <summary>How much more reference cost the candidate's choice has than the reference's own (1: as good).</summary>
    public double Ratio => ReferenceTotal > 0 ? CandidateTotal / ReferenceTotal : 1;
}

/// <summary>
/// How well a cheap cost measure (the proxy) stands in for the measured one (KL): Spearman's rank correlation over
/// every (tensor, type) pair a budget chooses between, the same within each type (across tensors: whether it finds
/// the sensitive tensors), and the reference cost of the plan each would choose at some budgets.
/// </summary>
public sealed record CostAgreement(int Pairs, double Spearman, IReadOnlyList<(GgmlType Type, double Spearman)> WithinType, IReadOnlyList<PlanScore> Plans)
{
    public static CostAgreement Compare(HymbaConfig config, TensorCosts reference, TensorCosts candidate, IEnumerable<double> targets)
    {
        var pairs = HymbaStorageLayout.For(config).Where(CandidateTypes.IsChosen)
            .SelectMany(t => CandidateTypes.For(t).Where(type => type != GgmlType.F16).Select(type => (t.Name, Type: type))).ToList();
        double[] Of(TensorCosts costs, IEnumerable<(string Name, GgmlType Type)> keys) => [.. keys.Select(k => costs.Get(k.Name, k.Type))];
        var withinType = pairs.GroupBy(p => p.Type).OrderBy(g => g.Key)
            .Select(g => (g.Key, RankCorrelation(Of(reference, g), Of(candidate, g)))).ToList();
        var plans = targets.Select(target =>
        {
            var byReference = BitBudgetPlan.Create(config, target, reference, "reference");
            var byCandidate = BitBudgetPlan.Create(config, target, candidate, "candidate");
            return new PlanScore(target, byReference.TotalCost, byCandidate.Choices.Sum(c => reference.Get(c.Tensor.Name, c.Type)));
        }).ToList();
        return new CostAgreement(pairs.Count, RankCorrelation(Of(reference, pairs), Of(candidate, pairs)), withinType, plans);
    }

    /// <summary>Spearman's ρ: Pearson's correlation of the ranks (tied values share their mean rank).</summary>
    public static double RankCorrelation(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count != b.Count) throw new ArgumentException("the two lists differ in length");
        if (a.Count < 2) return double.NaN;
        var ra = Ranks(a);
        var rb = Ranks(b);
        double ma = ra.Average(), mb = rb.Average(), sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < ra.Length; i++)
        {
            sab += (ra[i] - ma) * (rb[i] - mb);
            saa += (ra[i] - ma) * (ra[i] - ma);
            sbb += (rb[i] - mb) * (rb[i] - mb);
        }
        return saa > 0 && sbb > 0 ? sab / Math.Sqrt(saa * sbb) : double.NaN;
    }

    private static double[] Ranks(IReadOnlyList<double> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Count];
        for (int start = 0; start < order.Length;)
        {
            int end = start;
            while (end + 1 < order.Length && values[order[end + 1]] == values[order[start]]) end++;
            double mean = (start + end) / 2.0 + 1;
            for (int k = start; k <= end; k++) ranks[order[k]] = mean;
            start = end + 1;
        }
        return ranks;
    }

    public string ToText(string referenceName, string candidateName)
    {
        var inv = CultureInfo.InvariantCulture;
        var b = new StringBuilder();
        b.Append(inv, $"Spearman rank correlation of {candidateName} with {referenceName}, all {Pairs} (tensor, type) pairs: {Spearman:F3}\n");
        b.Append("within each type, across tensors: ").Append(string.Join(", ", WithinType.Select(w => string.Create(inv, $"{GgmlTypes.NameOf(w.Type)} {w.Spearman:F3}")))).Append('\n');
        foreach (var p in Plans)
            b.Append(inv, $"--target-bpw {p.TargetBitsPerWeight:0.###}: the plan chosen by {referenceName} costs {p.ReferenceTotal:G4}, the plan chosen by {candidateName} {p.CandidateTotal:G4} ({p.Ratio:F2}x), both in {referenceName}\n");
        return b.ToString();
    }
}
