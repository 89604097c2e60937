using System.Runtime.CompilerServices;
namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// Q4_0: 32 values, fp16 scale d = max/-8 (max = the signed value of largest magnitude, first one wins),
/// q = min(15, trunc(x/d + 8.5)); byte j holds element j (low nibble) and j+16 (high nibble).
/// With importance: ggml's make_qx_quants search with weights qw * sqrt(sigma^2 + x^2).
/// </summary>
internal sealed class Q4_0Format : IBlockFormat
{
    public GgmlType Type => GgmlType.Q4_0;
    public int BlockSize => 32;
    public int BlockBytes => 18;
    public bool UsesImportance => true;
    public BlockGrid Grid { get; }

    public Q4_0Format() => Grid = new GgmlBlockGrid(this, levels: 16, offset: 8, hasMin: false, GgmlBlockGrid.PackNibbles);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance)
    {
        int blocks = BlockFormatGuard.Blocks(this, row.Length, destination.Length, importance);
        if (!importance.IsEmpty) { QuantizeWeighted(row, destination, importance, blocks); return; }
        for (int b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = destination.Slice(b * 18, 18);
            if (!BlockVectors.TryQuantizeSymmetric(x, y, 16)) QuantizeBlockReference(x, y);
        }
    }

    /// <summary>ggml's quantize_row_q4_0_ref for one block: the definition the vector path is tested against, and its fallback.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeBlockReference(ReadOnlySpan<float> x, Span<byte> y)
    {
        float max = QuantMath.SignedMaxByMagnitude(x);
        float d = max / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        QuantMath.WriteHalf(y, d);
        for (int j = 0; j < 16; j++)
        {
            float x0 = x[j] * id;
            float x1 = x[16 + j] * id;
            int xi0 = Math.Min(15, (int)(sbyte)QuantMath.TruncateX86(x0 + 8.5f));
            int xi1 = Math.Min(15, (int)(sbyte)QuantMath.TruncateX86(x1 + 8.5f));
            y[2 + j] = (byte)(xi0 | (xi1 << 4));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeWeighted(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance, int blocks)
    {
        float sigma2 = QuantMath.MeanSquare(row);
        Span<float> weight = stackalloc float[32];
        Span<sbyte> L = stackalloc sbyte[32];
        for (int b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * 32, 32);
            var qw = importance.Slice(b * 32, 32);
            var y = destination.Slice(b * 18, 18);
            QuantMath.ImportanceWeights(x, qw, sigma2, weight);
            float d = QuantMath.MakeQxQuants(32, 8, x, L, 1, weight);
            QuantMath.WriteHalf(y, d);
            for (int j = 0; j < 16; j++) y[2 + j] = (byte)((byte)L[j] | ((byte)L[j + 16] << 4)); // levels are 0..15
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = BlockFormatGuard.BlocksFromBytes(this, source.Length, destination.Length);
        for (int b = 0; b < blocks; b++)
        {
            var y = source.Slice(b * 18, 18);
            float d = QuantMath.ReadHalf(y);
            for (int j = 0; j < 16; j++)
            {
                destination[b * 32 + j] = ((y[2 + j] & 0x0F) - 8) * d;
                destination[b * 32 + j + 16] = ((y[2 + j] >> 4) - 8) * d;
            }
        }
    }
}
