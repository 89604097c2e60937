using System.Globalization;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Quantization.BitBudget;
using HymbaTools.Quantization.Onnx;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// A bit budget for an int4 export (<c>export --type int4 --target-bpw B</c>): each MatMulNBits weight the int4 policy
/// makes 4-bit takes 4 or 8 bits by measured cost (KL on calibration text up to 50M parameters, else the layer-output
/// error; <see cref="BudgetCostMeasurement"/>), chosen by the knapsack so that the weights' bytes stay at or under B bits
/// per weight (the rest keeps the policy: 8-bit x_proj, dt_proj and embedding/head, float32 norms and SSM parameters).
/// Bits per weight count every weight initializer's bytes over the checkpoint's parameters.
/// </summary>
public sealed class OnnxBitBudget
{
    /// <summary>The model metadata key the plan is recorded under (target, measured bits per weight, cost measure and rounding, one line per weight).</summary>
    public const string MetadataKey = "hymba.export.plan";

    private OnnxBitBudget(double target, TensorCosts costs, IReadOnlyList<BudgetChoice> choices, double bitsPerWeight, string calibration)
    {
        TargetBitsPerWeight = target;
        Costs = costs;
        Choices = choices;
        BitsPerWeight = bitsPerWeight;
        Calibration = calibration;
    }

    public double TargetBitsPerWeight { get; }
    public TensorCosts Costs { get; }
    public IReadOnlyList<BudgetChoice> Choices { get; }
    /// <summary>Weight bytes of the plan, in bits per weight.</summary>
    public double BitsPerWeight { get; }
    public string Calibration { get; }

    /// <summary>Bits per weight chosen for each weight the budget decided.</summary>
    public IReadOnlyDictionary<string, int> Bits => Choices.ToDictionary(c => c.Tensor.Name, c => MatMulNBitsBudgetChoices.BitsOf(c.Type), StringComparer.Ordinal);

    /// <summary>The weights that may take 4 or 8 bits, and the rest's bytes.</summary>
    public static MatMulNBitsBudgetChoices ChoicesFor(HymbaConfig config, int blockSize)
    {
        var weights = OnnxPrecision.Plan(config, OnnxExportType.Int4);
        bool Chosen(OnnxWeight w) => w.Kind == OnnxWeightKind.NBits && w.Bits == 4;
        return new MatMulNBitsBudgetChoices(config, [.. weights.Where(Chosen).Select(w => w.Tensor)], weights.Where(w => !Chosen(w)).Sum(w => w.Bytes(blockSize)), blockSize);
    }

    /// <summary>Refuses a target the policy cannot meet before anything is measured, then measures the costs and chooses.</summary>
    public static OnnxBitBudget Create(HymbaCheckpoint checkpoint, double target, int blockSize, BudgetCostRequest request, string calibration,
        IProgress<(long Done, long Total)>? progress = null)
    {
        var choices = ChoicesFor(checkpoint.Config, blockSize);
        choices.Budget(target);
        var costs = BudgetCostMeasurement.Measure(checkpoint, request, progress, choices);
        var chosen = choices.Choose(target, costs);
        double bits = 8.0 * (choices.FixedBytes + chosen.Sum(c => c.Bytes)) / choices.Parameters;
        return new OnnxBitBudget(target, costs, chosen, bits, calibration);
    }

    /// <summary>The lines recorded under <see cref="MetadataKey"/>.</summary>
    public IReadOnlyList<string> MetadataLines() =>
        BitBudgetPlan.Record(TargetBitsPerWeight, BitsPerWeight, Costs, Calibration, Choices, c => MatMulNBitsBudgetChoices.BitsOf(c.Type).ToString(CultureInfo.InvariantCulture));

    /// <summary>One line for the terminal: how many weights took 8 bits and the bits per weight reached.</summary>
    public string Summary() => string.Create(CultureInfo.InvariantCulture,
        $"bit budget {TargetBitsPerWeight:0.###}: {Choices.Count(c => c.Type == GgmlType.Q8_0)} of {Choices.Count} MatMulNBits weights at 8 bits ({CostMeasures.Describe(Costs.Measure)}, {RoundingMethods.NameOf(Costs.Method)} rounding), {BitsPerWeight:F3} bits per weight");
}
