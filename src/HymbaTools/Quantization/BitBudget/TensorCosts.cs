namespace HymbaTools.Quantization.BitBudget;

/// <summary>How a cost was measured.</summary>
public enum CostMeasure
{
    /// <summary>Mean KL(reference || model with only this tensor rounded) over the calibration tokens, in nats.</summary>
    Kl,
    /// <summary>Importance-weighted squared rounding error Σ imatrix_j (w_ij − q_ij)², the tensor's output error energy per token.</summary>
    Proxy,
    /// <summary>Squared error of the tensor's decoder layer output per calibration position, with only this tensor rounded (see LayerOutputCostMeasurer).</summary>
    LayerOutput,
}

/// <summary>The names of <see cref="CostMeasure"/> (--cost, general.quantization.plan's cost=) and what each measures.</summary>
public static class CostMeasures
{
    private static readonly (CostMeasure Measure, string Name, string Description)[] Table =
    [
        (CostMeasure.Kl, "kl", "KL on calibration text"),
        (CostMeasure.LayerOutput, "layer", "squared error of the layer output"),
        (CostMeasure.Proxy, "proxy", "importance-weighted squared error"),
    ];

    public static string NameOf(CostMeasure measure) => Table.Single(e => e.Measure == measure).Name;

    public static string Describe(CostMeasure measure) => Table.Single(e => e.Measure == measure).Description;

    /// <summary>The measure named by <paramref name="name"/>; an unknown name is an input error naming --cost.</summary>
    public static CostMeasure Parse(string name) =>
        Table.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase)) is { Name: not null } found ? found.Measure
            : throw new Common.InvalidRequestException("--cost", $"'{name}', expected {string.Join(", ", Table.Select(e => e.Name))}");
}

/// <summary>
/// The measured cost of each chosen tensor at each candidate type (F16 counts as 0: its rounding is below what
/// the measures resolve). Costs are additive across tensors (each is measured with only its own tensor rounded).
/// </summary>
public sealed class TensorCosts(CostMeasure measure, RoundingMethod method)
{
    private readonly Dictionary<string, Dictionary<GgmlType, double>> _costs = new(StringComparer.Ordinal);

    public CostMeasure Measure { get; } = measure;
    /// <summary>The rounding the costs were measured with (recorded as cost_rounding).</summary>
    public RoundingMethod Method { get; } = method;

    public void Set(string tensor, GgmlType type, double cost)
    {
        if (!double.IsFinite(cost)) cost = double.MaxValue / 1e6;
        if (!_costs.TryGetValue(tensor, out var byType)) _costs[tensor] = byType = [];
        byType[type] = Math.Max(0, cost);
    }

    public double Get(string tensor, GgmlType type) =>
        type is GgmlType.F16 or GgmlType.F32 ? 0 : _costs.TryGetValue(tensor, out var byType) && byType.TryGetValue(type, out double c) ? c
            : throw new KeyNotFoundException($"no cost measured for {tensor} at {GgmlTypes.NameOf(type)}");
}
