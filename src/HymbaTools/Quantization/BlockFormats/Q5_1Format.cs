using System.Runtime.CompilerServices;
namespace HymbaTools.Quantization.BlockFormats;

/// <summary>Q5_1: 32 values, fp16 d = (max-min)/31 and m = min, q = trunc((x-min)/d + 0.5) (no clamp, as in ggml), bits as Q5_0.</summary>
internal sealed class Q5_1Format : IBlockFormat
{
    public GgmlType Type => GgmlType.Q5_1;
    public int BlockSize => 32;
    public int BlockBytes => 24;
    public bool UsesImportance => true;
    public BlockGrid Grid { get; }

    public Q5_1Format() => Grid = new GgmlBlockGrid(this, levels: 32, offset: 0, hasMin: true, Q5_0Format.Pack);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance)
    {
        int blocks = BlockFormatGuard.Blocks(this, row.Length, destination.Length, importance);
        float sigma2 = importance.IsEmpty ? 0 : QuantMath.MeanSquare(row);
        Span<float> weight = stackalloc float[32];
        Span<byte> L = stackalloc byte[32];
        Span<byte> Laux = stackalloc byte[32];
        for (int b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = destination.Slice(b * 24, 24);
            if (importance.IsEmpty)
            {
                if (!BlockVectors.TryQuantizeAsymmetric(x, y, 32)) QuantizeBlockReference(x, y);
                continue;
            }
            var qw = importance.Slice(b * 32, 32);
            QuantMath.ImportanceWeights(x, qw, sigma2, weight);
            float d = QuantMath.MakeQkx3Quants(32, 31, x, weight, L, out float min, Laux, -0.9f, 0.05f, 36, false);
            QuantMath.WriteHalf(y, d);
            QuantMath.WriteHalf(y[2..], -min);
            Q5_0Format.Pack(L, y[4..]);
        }
    }

    /// <summary>ggml's quantize_row_q5_1_ref for one block: the definition the vector path is tested against, and its fallback.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeBlockReference(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> q = stackalloc byte[32];
        QuantMath.MinMax(x, out float min, out float max);
        float d = (max - min) / ((1 << 5) - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        QuantMath.WriteHalf(y, d);
        QuantMath.WriteHalf(y[2..], min);
        for (int j = 0; j < 32; j++)
        {
            float xj = (x[j] - min) * id;
            q[j] = (byte)QuantMath.TruncateX86(xj + 0.5f);
        }
        Q5_0Format.Pack(q, y[4..]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = BlockFormatGuard.BlocksFromBytes(this, source.Length, destination.Length);
        Span<int> q = stackalloc int[32];
        for (int b = 0; b < blocks; b++)
        {
            var y = source.Slice(b * 24, 24);
            float d = QuantMath.ReadHalf(y), m = QuantMath.ReadHalf(y[2..]);
            Q5_0Format.Unpack(y[4..], q);
            for (int j = 0; j < 32; j++) destination[b * 32 + j] = q[j] * d + m;
        }
    }
}
