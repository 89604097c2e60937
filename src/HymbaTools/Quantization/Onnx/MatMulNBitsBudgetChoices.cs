using HymbaTools.Model;
using HymbaTools.Quantization.BitBudget;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Quantization.Onnx;

/// <summary>
/// An ONNX export's budget (<c>export --type int4 --target-bpw B</c>): each MatMulNBits weight the int4 policy makes 4-bit
/// may take 4 or 8 bits, named as the precision policy reads them (Q4_0: 4 bits, Q8_0: 8 bits); the bytes are
/// MatMulNBits' (blocks and float32 scales), plain rounding is MLAS's, and GPTQ rounds into <see cref="MatMulNBitsGrid"/>.
/// </summary>
/// <param name="tensors">the weights that may take 8 bits (the rest is in <paramref name="fixedBytes"/>)</param>
public sealed class MatMulNBitsBudgetChoices(HymbaConfig config, IReadOnlyList<StoredTensor> tensors, long fixedBytes, int blockSize) : BudgetChoices(config)
{
    private static readonly IReadOnlyList<GgmlType> Types = [GgmlType.Q4_0, GgmlType.Q8_0];

    public static int BitsOf(GgmlType type) => type == GgmlType.Q8_0 ? 8 : 4;

    public override IReadOnlyList<StoredTensor> Tensors => tensors;
    public override IReadOnlyList<GgmlType> TypesOf(StoredTensor tensor) => Types;
    public override long Bytes(StoredTensor tensor, GgmlType type) => MatMulNBitsPacker.Bytes(tensor.Rows, tensor.Columns, BitsOf(type), blockSize);
    public override long FixedBytes => fixedBytes;

    internal override void RoundTripInPlace(StoredTensor tensor, GgmlType type, Span<float> weights, ImportanceMatrix? importance)
    {
        int cols = checked((int)tensor.Columns), rows = weights.Length / cols;
        const int Rows = 64;   // a piece at a time: no tensor-sized temporaries
        for (int first = 0; first < rows; first += Rows)
        {
            int count = Math.Min(Rows, rows - first);
            var piece = weights.Slice(first * cols, count * cols);
            MatMulNBitsPacker.Dequantize(MatMulNBitsPacker.Quantize(piece, count, cols, BitsOf(type), blockSize, symmetric: true)).CopyTo(piece);
        }
    }

    internal override BlockGrid? Grid(StoredTensor tensor, GgmlType type) => tensor.Columns % blockSize == 0 ? new MatMulNBitsGrid(BitsOf(type), blockSize) : null;
}
