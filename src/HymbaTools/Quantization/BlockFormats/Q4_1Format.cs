using System.Runtime.CompilerServices;
namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// Q4_1: 32 values, fp16 d = (max-min)/15 and fp16 m = min, q = min(15, trunc((x-min)/d + 0.5)), nibbles as Q4_0.
/// With importance: ggml's make_qkx3_quants search.
/// </summary>
internal sealed class Q4_1Format : IBlockFormat
{
    public GgmlType Type => GgmlType.Q4_1;
    public int BlockSize => 32;
    public int BlockBytes => 20;
    public bool UsesImportance => true;
    public BlockGrid Grid { get; }

    public Q4_1Format() => Grid = new GgmlBlockGrid(this, levels: 16, offset: 0, hasMin: true, GgmlBlockGrid.PackNibbles);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance)
    {
        int blocks = BlockFormatGuard.Blocks(this, row.Length, destination.Length, importance);
        if (!importance.IsEmpty) { QuantizeWeighted(row, destination, importance, blocks); return; }
        for (int b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = destination.Slice(b * 20, 20);
            if (!BlockVectors.TryQuantizeAsymmetric(x, y, 16)) QuantizeBlockReference(x, y);
        }
    }

    /// <summary>ggml's quantize_row_q4_1_ref for one block: the definition the vector path is tested against, and its fallback.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeBlockReference(ReadOnlySpan<float> x, Span<byte> y)
    {
        QuantMath.MinMax(x, out float min, out float max);
        float d = (max - min) / ((1 << 4) - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        QuantMath.WriteHalf(y, d);
        QuantMath.WriteHalf(y[2..], min);
        for (int j = 0; j < 16; j++)
        {
            float x0 = (x[j] - min) * id;
            float x1 = (x[16 + j] - min) * id;
            int xi0 = Math.Min(15, (int)(sbyte)QuantMath.TruncateX86(x0 + 0.5f));
            int xi1 = Math.Min(15, (int)(sbyte)QuantMath.TruncateX86(x1 + 0.5f));
            y[4 + j] = (byte)(xi0 | (xi1 << 4));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeWeighted(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance, int blocks)
    {
        float sigma2 = QuantMath.MeanSquare(row);
        Span<float> weight = stackalloc float[32];
        Span<byte> L = stackalloc byte[32];
        Span<byte> Laux = stackalloc byte[32];
        for (int b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * 32, 32);
            var qw = importance.Slice(b * 32, 32);
            var y = destination.Slice(b * 20, 20);
            QuantMath.ImportanceWeights(x, qw, sigma2, weight);
            float d = QuantMath.MakeQkx3Quants(32, 15, x, weight, L, out float min, Laux, -0.9f, 0.05f, 36, false);
            QuantMath.WriteHalf(y, d);
            QuantMath.WriteHalf(y[2..], -min);
            for (int j = 0; j < 16; j++) y[4 + j] = (byte)(L[j] | (L[j + 16] << 4));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = BlockFormatGuard.BlocksFromBytes(this, source.Length, destination.Length);
        for (int b = 0; b < blocks; b++)
        {
            var y = source.Slice(b * 20, 20);
            float d = QuantMath.ReadHalf(y), m = QuantMath.ReadHalf(y[2..]);
            for (int j = 0; j < 16; j++)
            {
                destination[b * 32 + j] = (y[4 + j] & 0x0F) * d + m;
                destination[b * 32 + j + 16] = (y[4 + j] >> 4) * d + m;
            }
        }
    }
}
