using HymbaTools.Model;

namespace HymbaTools.Quantization.BitBudget;

/// <summary>
/// The types a bit budget may give a linear weight: the ggml block types every reader runs that fit Hymba's
/// widths (blocks of 32; K types' 256 never fit) and F16, each only where the tensor's rows are whole blocks,
/// so a budget plan never has a shape fallback.
/// </summary>
public static class CandidateTypes
{
    /// <summary>In order of size; ties (Q4_0 / IQ4_NL) keep this order.</summary>
    public static IReadOnlyList<GgmlType> All { get; } =
        [GgmlType.Q4_0, GgmlType.IQ4_NL, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.F16];

    /// <summary>Whether the budget chooses this tensor's type (linear weights); the rest stay F32 as in every preset.</summary>
    public static bool IsChosen(StoredTensor t) => t.IsMatrix && HymbaStorageLayout.IsLinearWeight(t.Role);

    public static IReadOnlyList<GgmlType> For(StoredTensor t) => [.. All.Where(type => GgmlTypes.FitsRow(type, t.Columns))];

    /// <summary>The smallest type a tensor fits (F16 for rows that are no whole number of 32-blocks, such as dt_proj's).</summary>
    public static GgmlType Smallest(StoredTensor t) => For(t)[0];
}
