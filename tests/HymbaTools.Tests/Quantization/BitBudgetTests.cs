using System.Text;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Quantization.BitBudget;
using HymbaTools.Synthetic;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Quantization;

public class BitBudgetTests
{
    private static HymbaConfig TinyA => HymbaConfig.Load(Path.Combine(Fixtures.TinyA, "config.json"));
    private static HymbaConfig Hymba15B => HymbaConfig.Parse(Encoding.UTF8.GetBytes(CheckpointPreset.Find("1.5b")!.ToConfigJson("bfloat16").ToJsonString()), "1.5b");

    /// <summary>
    /// Costs shaped as measured ones: each tensor has its own sensitivity (a hash of its name spread over three
    /// decades) times the error of the type (halving per extra bit; IQ4_NL a little under Q4_0, the _1 types a
    /// little under their _0 twins).
    /// </summary>
    private static TensorCosts SyntheticCosts(HymbaConfig config)
    {
        var costs = new TensorCosts(CostMeasure.Kl, RoundingMethod.Rtn);
        var typeError = new Dictionary<GgmlType, double>
        {
            [GgmlType.Q4_0] = 1.0, [GgmlType.IQ4_NL] = 0.8, [GgmlType.Q4_1] = 0.7, [GgmlType.Q5_0] = 0.5, [GgmlType.Q5_1] = 0.4, [GgmlType.Q8_0] = 0.02,
        };
        foreach (var t in HymbaStorageLayout.For(config).Where(CandidateTypes.IsChosen))
        {
            uint hash = 2166136261;
            foreach (char ch in t.Name) hash = (hash ^ ch) * 16777619;
            double sensitivity = Math.Pow(10, hash % 3000 / 1000.0) * t.ElementCount;
            foreach (var type in CandidateTypes.For(t).Where(x => x != GgmlType.F16)) costs.Set(t.Name, type, sensitivity * typeError[type]);
        }
        return costs;
    }

    public static IEnumerable<object[]> Budgets() =>
    [
        ["tiny-a", 9.0], ["tiny-a", 12.5], ["tiny-a", 20.0],
        ["1.5b", 4.9], ["1.5b", 5.3], ["1.5b", 6.25], ["1.5b", 8.0],
    ];

    [Theory]
    [MemberData(nameof(Budgets))]
    public void The_plan_stays_at_or_under_the_budget_without_fallbacks(string model, double target)
    {
        var config = model == "1.5b" ? Hymba15B : TinyA;
        var budget = BitBudgetPlan.Create(config, target, SyntheticCosts(config), "synthetic");
        var plan = budget.Plan;
        long allowed = (long)Math.Floor((decimal)target * plan.TotalParameters / 8);
        Assert.True(plan.TotalBytes <= allowed, $"{plan.TotalBytes} bytes > {allowed}");
        Assert.True(plan.BitsPerWeight <= target, $"{plan.BitsPerWeight} > {target}");
        Assert.Empty(plan.Fallbacks);
        // Exact use of the budget: no single tensor could be moved up one type within what is left.
        long free = allowed - plan.TotalBytes;
        foreach (var c in budget.Choices)
        {
            var better = CandidateTypes.For(c.Tensor).Where(t => budget.Costs.Get(c.Tensor.Name, t) < c.Cost)
                .Select(t => c.Tensor.Rows * GgmlTypes.RowBytes(t, c.Tensor.Columns) - c.Bytes);
            Assert.All(better, extra => Assert.True(extra > free, $"{c.Tensor.Name} could improve by spending {extra} of {free} free bytes"));
        }
        Assert.All(plan.Tensors.Where(t => !CandidateTypes.IsChosen(t.Tensor)), t => Assert.Equal(GgmlType.F32, t.Type));
    }

    [Fact]
    public void At_4_9_bits_the_1_5b_plan_keeps_most_weights_at_4_bits_and_spends_the_rest_where_costs_are_high()
    {
        var config = Hymba15B;
        var budget = BitBudgetPlan.Create(config, 4.9, SyntheticCosts(config), "synthetic");
        Assert.InRange(budget.Plan.BitsPerWeight, 4.85, 4.9);
        Assert.Equal(GgmlType.F16, budget.Choices.Single(c => c.Tensor.Name == "blk.0.ssm_dt.weight").Type); // 100 columns: only F16 fits
        var upgraded = budget.Choices.Where(c => c.Type is not (GgmlType.Q4_0 or GgmlType.IQ4_NL or GgmlType.F16)).ToList();
        Assert.NotEmpty(upgraded);
    }

    [Fact]
    public void The_knapsack_upgrades_the_tensor_whose_measured_cost_is_higher()
    {
        KnapsackItem Item(string name, double scale) => new(name,
        [
            new KnapsackOption(GgmlType.Q4_0, 1800, 1.0 * scale), new KnapsackOption(GgmlType.Q5_0, 2200, 0.6 * scale), new KnapsackOption(GgmlType.Q8_0, 3400, 0),
        ]);
        var items = new[] { Item("a", 1), Item("b", 3), Item("c", 2) };
        var solution = BudgetKnapsack.Solve(items, 3 * 1800 + 400)!;        // room for one Q4_0 -> Q5_0 step
        Assert.Equal([GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_0], solution.Select(o => o.Type));
        solution = BudgetKnapsack.Solve(items, 3 * 1800 + 1600)!;           // b -> Q8_0 (total 3.0) beats three Q5_0 steps (3.6)
        Assert.Equal([GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_0], solution.Select(o => o.Type));
        Assert.True(solution.Sum(o => o.Bytes) <= 3 * 1800 + 1600);
        Assert.Null(BudgetKnapsack.Solve(items, 3 * 1800 - 1));
    }

    /// <summary>Random small instances: the solver's total equals the brute-force optimum, and the greedy path stays in budget.</summary>
    [Fact]
    public void The_knapsack_is_exact_against_brute_force()
    {
        var random = new Random(22);
        int[] sizes = [18, 20, 22, 24, 34, 64];
        for (int instance = 0; instance < 200; instance++)
        {
            var items = Enumerable.Range(0, 5).Select(i =>
            {
                int blocks = random.Next(1, 40);
                return new KnapsackItem($"t{i}", sizes.OrderBy(_ => random.Next()).Take(random.Next(1, 5))
                    .Select(s => new KnapsackOption(GgmlType.Q4_0, (long)blocks * s, Math.Round(random.NextDouble() * 10, 3))).ToList());
            }).ToList();
            long floor = items.Sum(i => i.Options.Min(o => o.Bytes)), ceiling = items.Sum(i => i.Options.Max(o => o.Bytes));
            long budget = floor + (long)(random.NextDouble() * (ceiling - floor));
            double optimum = double.PositiveInfinity;
            void Search(int i, long bytes, double cost)
            {
                if (bytes > budget) return;
                if (i == items.Count) { optimum = Math.Min(optimum, cost); return; }
                foreach (var o in items[i].Options) Search(i + 1, bytes + o.Bytes, cost + o.Cost);
            }
            Search(0, 0, 0);
            var exact = BudgetKnapsack.Solve(items, budget)!;
            Assert.True(exact.Sum(o => o.Bytes) <= budget);
            Assert.Equal(optimum, exact.Sum(o => o.Cost), 9);
            var greedy = BudgetKnapsack.Solve(items, budget, exactAllowed: false)!;
            Assert.True(greedy.Sum(o => o.Bytes) <= budget);
            Assert.True(greedy.Sum(o => o.Cost) >= optimum - 1e-9);
        }
    }

    [Fact]
    public void The_plan_prefers_the_tensor_with_higher_measured_cost()
    {
        var config = TinyA;
        var costs = new TensorCosts(CostMeasure.Kl, RoundingMethod.Rtn);
        var typeError = new Dictionary<GgmlType, double>
        {
            [GgmlType.Q4_0] = 1.0, [GgmlType.IQ4_NL] = 1.0, [GgmlType.Q4_1] = 0.9, [GgmlType.Q5_0] = 0.5, [GgmlType.Q5_1] = 0.45, [GgmlType.Q8_0] = 0.01,
        };
        foreach (var t in HymbaStorageLayout.For(config).Where(CandidateTypes.IsChosen))
            foreach (var type in CandidateTypes.For(t).Where(x => x != GgmlType.F16))
                costs.Set(t.Name, type, (t.Name == "blk.2.ffn_up.weight" ? 100.0 : 1.0) * t.ElementCount * typeError[type]);
        var smallest = BitBudgetPlan.Create(config, 100, costs, "x").Plan;   // everything fits: the cheapest cost everywhere
        var lowest = HymbaStorageLayout.For(config).Where(CandidateTypes.IsChosen).Sum(t => t.Rows * GgmlTypes.RowBytes(CandidateTypes.Smallest(t), t.Columns));
        long fixedBytes = smallest.Tensors.Where(t => !CandidateTypes.IsChosen(t.Tensor)).Sum(t => t.Bytes);
        // Budget for the 4-bit floor plus a little more than ffn_up's step to Q8_0.
        var up = HymbaStorageLayout.For(config).Single(t => t.Name == "blk.2.ffn_up.weight");
        long extra = up.Rows * (GgmlTypes.RowBytes(GgmlType.Q8_0, up.Columns) - GgmlTypes.RowBytes(GgmlType.Q4_0, up.Columns));
        double target = 8.0 * (lowest + fixedBytes + extra + 8) / smallest.TotalParameters;
        var budget = BitBudgetPlan.Create(config, target, costs, "x");
        Assert.Equal(GgmlType.Q8_0, budget.Choices.Single(c => c.Tensor.Name == "blk.2.ffn_up.weight").Type);
        Assert.Equal(GgmlType.Q4_0, budget.Choices.Single(c => c.Tensor.Name == "blk.1.ffn_up.weight").Type);   // same size, lower cost: stays
        Assert.True(budget.Plan.BitsPerWeight <= target);
    }

    [Fact]
    public void The_plan_is_deterministic()
    {
        var config = Hymba15B;
        var a = BitBudgetPlan.Create(config, 5.1, SyntheticCosts(config), "synthetic");
        var b = BitBudgetPlan.Create(config, 5.1, SyntheticCosts(config), "synthetic");
        Assert.Equal(a.MetadataLines(), b.MetadataLines());
        Assert.Equal(a.ToText(), b.ToText());
    }

    [Fact]
    public void A_budget_below_the_smallest_plan_is_an_input_error()
    {
        var e = Assert.Throws<InvalidRequestException>(() => BitBudgetPlan.Create(Hymba15B, 4.0, SyntheticCosts(Hymba15B), "synthetic"));
        Assert.Contains("--target-bpw", e.Message);
        Assert.Contains("smallest plan", e.Message);
    }
}
