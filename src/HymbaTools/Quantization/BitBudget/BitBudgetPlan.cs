using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Model;

namespace HymbaTools.Quantization.BitBudget;

/// <summary>
/// Per-tensor types chosen by measured cost under a bits-per-weight budget (tensor data, as `hymba` reports
/// it): the linear weights take the knapsack's choice among the types that fit them, the rest stay F32.
/// </summary>
public sealed class BitBudgetPlan
{
    private BitBudgetPlan(double target, TensorCosts costs, IReadOnlyList<BudgetChoice> choices, QuantizationPlan plan, string calibration)
    {
        TargetBitsPerWeight = target;
        Costs = costs;
        Choices = choices;
        Plan = plan;
        Calibration = calibration;
    }

    public double TargetBitsPerWeight { get; }
    public TensorCosts Costs { get; }
    public IReadOnlyList<BudgetChoice> Choices { get; }
    public QuantizationPlan Plan { get; }
    /// <summary>What the costs were measured on (file name and token count).</summary>
    public string Calibration { get; }
    public double TotalCost => Choices.Sum(c => c.Cost);

    public static BitBudgetPlan Create(HymbaConfig config, double targetBitsPerWeight, TensorCosts costs, string calibration)
    {
        var choices = new GgufBudgetChoices(config).Choose(targetBitsPerWeight, costs);
        var dominant = choices.GroupBy(c => c.Type).OrderByDescending(g => g.Sum(c => c.Bytes)).ThenBy(g => g.Key).First().Key;
        string name = "bpw-" + targetBitsPerWeight.ToString("0.###", CultureInfo.InvariantCulture);
        var preset = new QuantizationPreset(name, dominant, QuantizationPreset.FileTypeOf(dominant), dominant, dominant, null,
            $"types chosen per tensor by measured cost ({MeasureName(costs)}, {RoundingMethods.NameOf(costs.Method)} rounding) within {targetBitsPerWeight.ToString("0.###", CultureInfo.InvariantCulture)} bits per weight");
        var plan = QuantizationPlan.FromChoices(config, preset, choices.ToDictionary(c => c.Tensor.Name,
            c => (c.Type, $"budget: cost {c.Cost.ToString("G4", CultureInfo.InvariantCulture)} (at {GgmlTypes.NameOf(CandidateTypes.Smallest(c.Tensor))}: {c.SmallestCost.ToString("G4", CultureInfo.InvariantCulture)})")));
        return new BitBudgetPlan(targetBitsPerWeight, costs, choices, plan, calibration);
    }

    private static string MeasureName(TensorCosts costs) => CostMeasures.Describe(costs.Measure);

    /// <summary>The lines recorded under general.quantization.plan: target, measure, calibration, then "tensor=TYPE cost".</summary>
    public IReadOnlyList<string> MetadataLines() => Record(TargetBitsPerWeight, Plan.BitsPerWeight, Costs, Calibration, Choices, c => GgmlTypes.NameOf(c.Type));

    /// <summary>
    /// A budget as a file records it (GGUF general.quantization.plan, ONNX hymba.export.plan): target, bits per weight
    /// reached, cost measure and the rounding it was measured with, calibration, then "tensor=CHOICE cost=C" per tensor.
    /// </summary>
    internal static IReadOnlyList<string> Record(double target, double bitsPerWeight, TensorCosts costs, string calibration, IEnumerable<BudgetChoice> choices,
        Func<BudgetChoice, string> choiceName) =>
    [
        $"target_bpw={target.ToString("0.###", CultureInfo.InvariantCulture)}",
        $"bits_per_weight={bitsPerWeight.ToString("F4", CultureInfo.InvariantCulture)}",
        $"cost={CostMeasures.NameOf(costs.Measure)}",
        $"cost_rounding={RoundingMethods.NameOf(costs.Method)}",
        $"calibration={calibration}",
        .. choices.Select(c => $"{c.Tensor.Name}={choiceName(c)} cost={c.Cost.ToString("G6", CultureInfo.InvariantCulture)}"),
    ];

    public string ToText()
    {
        var table = new TextTable("tensor", "shape", "type", "bytes", "cost", "cost at smallest type");
        foreach (var c in Choices)
            table.Add(c.Tensor.Name, "[" + string.Join(", ", c.Tensor.Shape) + "]", GgmlTypes.NameOf(c.Type), c.Bytes, c.Cost, c.SmallestCost);
        return $"bit budget {TargetBitsPerWeight.ToString("0.###", CultureInfo.InvariantCulture)} bits per weight; cost = {MeasureName(Costs)} " +
               $"({RoundingMethods.NameOf(Costs.Method)} rounding), measured on {Calibration}\n{table}" +
               $"\ntotal cost {TotalCost.ToString("G6", CultureInfo.InvariantCulture)}; " +
               string.Join(", ", Choices.GroupBy(c => c.Type).OrderBy(g => g.Key).Select(g => $"{GgmlTypes.NameOf(g.Key)} x{g.Count()}")) + "\n";
    }
}
