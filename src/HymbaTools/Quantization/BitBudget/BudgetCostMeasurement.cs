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
    /// <summary>Null: KL when calibration text is given and the model is small enough, else the proxy.</summary>
    public CostMeasure? Measure { get; init; }
}

/// <summary>
/// Measures every linear weight's cost at every type that fits it: KL in the model's output on calibration text
/// for models up to <see cref="KlParameterLimit"/> parameters (one forward per tensor and type), the
/// importance-weighted squared error otherwise (the importance from --imatrix, or collected from the
/// calibration text a layer at a time).
/// </summary>
internal static class BudgetCostMeasurement
{
    /// <summary>Largest model whose costs are measured as KL by default (the example model is 4.4M; Hymba-1.5B needs the proxy).</summary>
    public const long KlParameterLimit = 50_000_000;

    public static TensorCosts Measure(HymbaCheckpoint checkpoint, BudgetCostRequest request, IProgress<(long Done, long Total)>? progress = null)
    {
        var config = checkpoint.Config;
        var layout = HymbaStorageLayout.For(config);
        var chosen = layout.Where(CandidateTypes.IsChosen).ToList();
        long parameters = layout.Sum(t => t.ElementCount);
        var measure = request.Measure ?? (request.Chunks is not null && parameters <= KlParameterLimit ? CostMeasure.Kl : CostMeasure.Proxy);
        var source = new CheckpointTensorSource(checkpoint);
        if (measure == CostMeasure.Kl)
        {
            var chunks = request.Chunks ?? throw new Common.InvalidRequestException("--calibration", "measuring KL costs needs calibration text");
            using var model = HymbaModel.Load(source);
            // The whole model's Hessians at once: fine at the sizes KL is measured at.
            using var factors = request.Method == RoundingMethod.Gptq ? FactorCache.Measure(source, chunks, Common.ComputeThreads.Count) : null;
            float[] RoundTrip(StoredTensor t, GgmlType type, float[] weights)
            {
                if (factors is not null && t.Layer >= 0 && CompensatedTensorRounding.Round(t, type, weights, factors, config, request.Importance) is { } rounded)
                    return rounded.Dequantized;
                int cols = checked((int)t.Columns);
                var bytes = TensorQuantizer.Quantize(type, weights, cols, request.Importance?.For(t.Name, cols));
                return TensorQuantizer.Dequantize(type, bytes, weights.Length);
            }
            return KlCostMeasurer.Measure(model, chunks, chosen, RoundTrip, request.Method, progress);
        }
        var weighting = request.Importance
            ?? (request.Chunks is { } c ? LayerwiseImportance.Collect(source, c, "calibration", releasePages: checkpoint.ReleaseResidentPages)
                : throw new Common.InvalidRequestException("--calibration", "a bit budget needs --calibration TEXT or --imatrix FILE to measure costs"));
        return ProxyCostMeasurer.Measure(chosen, t => Rows(checkpoint, t), t => checkpoint.Get(t.SourceName).ReleaseResidentPages(), weighting,
            request.Importance is not null, request.Method, progress);
    }

    private static RowSource Rows(HymbaCheckpoint checkpoint, StoredTensor tensor)
    {
        var view = checkpoint.Get(tensor.SourceName);
        long cols = tensor.Columns, blockStart = tensor.SourceRows?.Start ?? 0;
        return (firstRow, count, destination) => view.CopyElementsToFloat32((blockStart + firstRow) * cols, count * cols, destination);
    }
}
