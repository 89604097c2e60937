using HymbaTools.Model;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Quantization.Gptq;

/// <summary>The bytes of one tensor rounded with error compensation, and the weights a decoder reads back from them.</summary>
internal sealed record RoundedTensor(byte[] Bytes, float[] Dequantized, double Damping);

/// <summary>
/// Rounds one stored linear weight held in managed memory with GPTQ, given the factors of a whole model (the bit
/// budget's KL costs); types without a block grid (floats) and weights whose input point has no Hessian are left to
/// plain rounding (null).
/// </summary>
internal static class CompensatedTensorRounding
{
    public static RoundedTensor? Round(StoredTensor tensor, GgmlType type, float[] weight, FactorCache factors, HymbaConfig config, ImportanceMatrix? importance) =>
        BlockGrid.ForGgml(type) is { } grid && GgmlTypes.FitsRow(type, tensor.Columns) ? Round(tensor, grid, weight, factors, config, importance) : null;

    /// <summary>The same with any block grid (MatMulNBits); null when the rows are not whole blocks or the input has no Hessian.</summary>
    public static RoundedTensor? Round(StoredTensor tensor, BlockGrid grid, float[] weight, FactorCache factors, HymbaConfig config, ImportanceMatrix? importance)
    {
        if (tensor.Columns % grid.BlockSize != 0 || tensor.Layer < 0) return null;
        if (ImportanceMatrix.PointOf(tensor.Role, config.TieWordEmbeddings) is not { } point) return null;
        if (factors.For(tensor.Layer, point) is not { } f) return null;
        int cols = checked((int)tensor.Columns), rows = checked((int)tensor.Rows);
        var working = (float[])weight.Clone();
        var bytes = GptqRounding.Round(working, rows, cols, f, grid, importance?.For(tensor.Name, cols));
        return new RoundedTensor(bytes, working, f.Damping);
    }
}
