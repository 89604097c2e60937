using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Quantization.BitBudget;

/// <summary>One tensor's type under a bit budget, with its measured cost there and at its smallest type.</summary>
public sealed record BudgetChoice(StoredTensor Tensor, GgmlType Type, long Bytes, double Cost, double SmallestCost);

/// <summary>
/// What a bit budget chooses between in one file format: the tensors it decides, the types each may take (smallest
/// first; a type names the precision the format stores, as its precision policy reads it: for ONNX, Q8_0 is an 8-bit
/// MatMulNBits weight), each choice's bytes and the bytes of everything else, and how a type rounds a tensor (plainly,
/// and the grid error-compensated rounding writes). The knapsack (<see cref="Choose"/>) and the cost measures work on
/// any of them.
/// </summary>
public abstract class BudgetChoices(HymbaConfig config)
{
    public HymbaConfig Config { get; } = config;

    /// <summary>The tensors whose types the budget chooses, in layout order.</summary>
    public abstract IReadOnlyList<StoredTensor> Tensors { get; }

    /// <summary>The types a tensor may take, smallest first (F16 costs 0: its rounding is below what the measures resolve).</summary>
    public abstract IReadOnlyList<GgmlType> TypesOf(StoredTensor tensor);

    /// <summary>The tensor's bytes in the format at a type.</summary>
    public abstract long Bytes(StoredTensor tensor, GgmlType type);

    /// <summary>The bytes of every stored tensor the budget does not choose for.</summary>
    public abstract long FixedBytes { get; }

    /// <summary>Replaces the tensor's rows [rows, columns] by what a reader decodes after plain rounding to a type (importance-weighted when the format's export is).</summary>
    internal abstract void RoundTripInPlace(StoredTensor tensor, GgmlType type, Span<float> weights, ImportanceMatrix? importance);

    /// <summary>A copy of <paramref name="weights"/> after <see cref="RoundTripInPlace"/>.</summary>
    internal float[] RoundTrip(StoredTensor tensor, GgmlType type, float[] weights, ImportanceMatrix? importance)
    {
        var copy = (float[])weights.Clone();
        RoundTripInPlace(tensor, type, copy, importance);
        return copy;
    }

    /// <summary>The grid error-compensated rounding writes a type into, or null when the tensor is rounded plainly there.</summary>
    internal abstract BlockGrid? Grid(StoredTensor tensor, GgmlType type);

    /// <summary>
    /// Whether the layer-output cost is measured at the smallest type only and scaled to the others by their ggml
    /// proxies (six types: one pass per tensor instead of six), or measured at every type.
    /// </summary>
    internal virtual bool ScalesByProxy => false;

    /// <summary>Every stored tensor's elements: what bits per weight are counted over (the same for every format).</summary>
    public long Parameters => HymbaStorageLayout.For(Config).Sum(t => t.ElementCount);

    /// <summary>
    /// Refuses a target below the smallest plan (every chosen tensor in its smallest type) or not a positive number,
    /// before any cost is measured; returns the bytes the budget may spend on the chosen tensors.
    /// </summary>
    public long Budget(double targetBitsPerWeight)
    {
        if (!(targetBitsPerWeight > 0) || !double.IsFinite(targetBitsPerWeight))
            throw new InvalidRequestException("--target-bpw", $"{targetBitsPerWeight.ToString(CultureInfo.InvariantCulture)}, expected a positive number of bits per weight");
        long parameters = Parameters;
        long budget = (long)Math.Floor((decimal)targetBitsPerWeight * parameters / 8) - FixedBytes;
        long smallest = Tensors.Sum(t => Bytes(t, TypesOf(t)[0]));
        if (smallest > budget)
            throw new InvalidRequestException("--target-bpw",
                $"{targetBitsPerWeight.ToString(CultureInfo.InvariantCulture)} is below the smallest plan: {8.0 * (smallest + FixedBytes) / parameters:F3} bits per weight with every chosen tensor in its smallest type");
        return budget;
    }

    /// <summary>The knapsack's choice: the types with the least total cost whose bytes stay within the budget.</summary>
    public IReadOnlyList<BudgetChoice> Choose(double targetBitsPerWeight, TensorCosts costs)
    {
        long budget = Budget(targetBitsPerWeight);
        var items = Tensors.Select(t => new KnapsackItem(t.Name, TypesOf(t).Select(type => new KnapsackOption(type, Bytes(t, type), costs.Get(t.Name, type))).ToList())).ToList();
        var solution = BudgetKnapsack.Solve(items, budget) ?? throw new InvalidOperationException("the smallest plan was checked to fit");
        return [.. Tensors.Select((t, i) => new BudgetChoice(t, solution[i].Type, solution[i].Bytes, solution[i].Cost, items[i].Options[0].Cost))];
    }
}

/// <summary>
/// A GGUF file's budget: the linear weights choose among the block types every ggml reader runs that fit them
/// (<see cref="CandidateTypes"/>), the rest stay F32.
/// </summary>
public sealed class GgufBudgetChoices(HymbaConfig config) : BudgetChoices(config)
{
    private readonly IReadOnlyList<StoredTensor> _tensors = [.. HymbaStorageLayout.For(config).Where(CandidateTypes.IsChosen)];

    public override IReadOnlyList<StoredTensor> Tensors => _tensors;
    public override IReadOnlyList<GgmlType> TypesOf(StoredTensor tensor) => CandidateTypes.For(tensor);
    public override long Bytes(StoredTensor tensor, GgmlType type) => tensor.Rows * GgmlTypes.RowBytes(type, tensor.Columns);
    public override long FixedBytes => HymbaStorageLayout.For(Config).Where(t => !CandidateTypes.IsChosen(t)).Sum(t => t.ElementCount * 4);

    internal override void RoundTripInPlace(StoredTensor tensor, GgmlType type, Span<float> weights, ImportanceMatrix? importance)
    {
        int cols = checked((int)tensor.Columns);
        var format = BlockFormatRegistry.Get(type);
        var weighting = format.UsesImportance ? importance?.For(tensor.Name, cols) : null;
        var bytes = new byte[GgmlTypes.RowBytes(type, cols)];
        for (int start = 0; start < weights.Length; start += cols)
        {
            var row = weights.Slice(start, cols);
            format.QuantizeRow(row, bytes, weighting);
            format.DequantizeRow(bytes, row);
        }
    }

    internal override BlockGrid? Grid(StoredTensor tensor, GgmlType type) => GgmlTypes.FitsRow(type, tensor.Columns) ? BlockGrid.ForGgml(type) : null;

    internal override bool ScalesByProxy => true;
}
