using HymbaTools.Model;
using HymbaTools.Quantization.Gptq;
using HymbaTools.Quantization.Calibration;

namespace HymbaTools.Quantization.BitBudget;

/// <summary>What a bit budget measures its costs with, and on what.</summary>
public sealed record BudgetCostRequest
{
    /// <summary>Calibration chunks (needed for KL and for GPTQ); null: the proxy from <see cref="Importance"/>.</summary>
    public long[][]? Chunks { get; init; }
    /// <summary>The user's importance matrix: weights the scale search (as in the export) and the proxy.</summary>
    public ImportanceMatrix? Importance { get; init; }
    /// <summary>The export's rounding: KL costs are measured with it.</summary>
    public RoundingMethod Method { get; init; } = RoundingMethod.Rtn;
    /// <summary>Null: with calibration text, KL when the model is small enough, else the layer-output error; without, the proxy.</summary>
    public CostMeasure? Measure { get; init; }
}

/// <summary>
/// Measures every linear weight's cost at every type that fits it: KL in the model's output on calibration text
/// for models up to <see cref="KlParameterLimit"/> parameters (one forward per tensor and type); above that the
/// squared error of each tensor's layer output (<see cref="LayerOutputCostMeasurer"/>), or with an importance matrix
/// and no calibration text the importance-weighted squared error (<see cref="ProxyCostMeasurer"/>).
/// </summary>
internal static class BudgetCostMeasurement
{
    /// <summary>Largest model whose costs are measured as KL by default (the example model is 4.4M; Hymba-1.5B needs the layer-output error).</summary>
    public const long KlParameterLimit = 50_000_000;

    /// <summary>The measure a request uses: its own, else KL with calibration text up to <see cref="KlParameterLimit"/> parameters, the layer-output error above, the proxy without text.</summary>
    public static CostMeasure MeasureOf(BudgetCostRequest request, long parameters) =>
        request.Measure ?? (request.Chunks is null ? CostMeasure.Proxy : parameters <= KlParameterLimit ? CostMeasure.Kl : CostMeasure.LayerOutput);

    /// <param name="choices">the tensors and types to measure (default: a GGUF file's, <see cref="GgufBudgetChoices"/>)</param>
    public static TensorCosts Measure(HymbaCheckpoint checkpoint, BudgetCostRequest request, IProgress<(long Done, long Total)>? progress = null, BudgetChoices? choices = null)
    {
        var config = checkpoint.Config;
        choices ??= new GgufBudgetChoices(config);
        var measure = MeasureOf(request, choices.Parameters);
        var source = new CheckpointTensorSource(checkpoint);
        if (measure != CostMeasure.Proxy && request.Chunks is null)
            throw new Common.InvalidRequestException("--calibration", $"measuring {CostMeasures.NameOf(measure)} costs needs calibration text");
        void Release(StoredTensor t) => checkpoint.Get(t.SourceName).ReleaseResidentPages();
        switch (measure)
        {
            case CostMeasure.LayerOutput:
                return LayerOutputCostMeasurer.Measure(source, request.Chunks!, choices, request.Importance, t => Rows(checkpoint, t), Release, progress, checkpoint.ReleaseResidentPages);
            case CostMeasure.Kl:
            {
                var chunks = request.Chunks!;
                using var model = HymbaModel.Load(source);
                // The whole model's Hessians at once: fine at the sizes KL is measured at.
                using var factors = request.Method == RoundingMethod.Gptq ? FactorCache.Measure(source, chunks, Common.ComputeThreads.Count) : null;
                float[] RoundTrip(StoredTensor t, GgmlType type, float[] weights) =>
                    factors is not null && choices.Grid(t, type) is { } grid && CompensatedTensorRounding.Round(t, grid, weights, factors, config, request.Importance) is { } rounded
                        ? rounded.Dequantized
                        : choices.RoundTrip(t, type, weights, request.Importance);
                return KlCostMeasurer.Measure(model, chunks, choices, RoundTrip, request.Method, progress);
            }
            default:
            {
                if (!choices.ScalesByProxy) throw new Common.InvalidRequestException("--cost", "proxy measures ggml blocks (GGUF); use kl or layer");
                var weighting = request.Importance
                    ?? (request.Chunks is { } c ? LayerwiseImportance.Collect(source, c, "calibration", releasePages: checkpoint.ReleaseResidentPages)
                        : throw new Common.InvalidRequestException("--calibration", "a bit budget needs --calibration TEXT or --imatrix FILE to measure costs"));
                return ProxyCostMeasurer.Measure(choices.Tensors, t => Rows(checkpoint, t), Release, weighting, request.Importance is not null, progress);
            }
        }
    }

    private static RowSource Rows(HymbaCheckpoint checkpoint, StoredTensor tensor)
    {
        var view = checkpoint.Get(tensor.SourceName);
        long cols = tensor.Columns, blockStart = tensor.SourceRows?.Start ?? 0;
        return (firstRow, count, destination) => view.CopyElementsToFloat32((blockStart + firstRow) * cols, count * cols, destination);
    }
}
