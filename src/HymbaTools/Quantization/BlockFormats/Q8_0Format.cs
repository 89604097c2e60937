using System.Runtime.CompilerServices;
namespace HymbaTools.Quantization.BlockFormats;

/// <summary>Q8_0: 32 values, fp16 scale d = amax/127 and int8 q = roundf(x/d) (half away from zero). Ignores importance, as ggml does.</summary>
internal sealed class Q8_0Format : IBlockFormat
{
    public GgmlType Type => GgmlType.Q8_0;
    public int BlockSize => 32;
    public int BlockBytes => 34;
    public bool UsesImportance => false;
    public BlockGrid Grid { get; }

    public Q8_0Format() => Grid = new GgmlBlockGrid(this, levels: 255, offset: 127, hasMin: false, PackSigned);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance)
    {
        int blocks = BlockFormatGuard.Blocks(this, row.Length, destination.Length, importance);
        for (int b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = destination.Slice(b * 34, 34);
            if (!BlockVectors.TryQuantizeQ8_0(x, y)) QuantizeBlockReference(x, y);
        }
    }

    /// <summary>ggml's quantize_row_q8_0_ref for one block: the definition the vector path is tested against, and its fallback.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeBlockReference(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
        float d = amax / ((1 << 7) - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        QuantMath.WriteHalf(y, d);
        for (int j = 0; j < 32; j++)
        {
            float x0 = x[j] * id;
            y[2 + j] = (byte)QuantMath.TruncateX86(MathF.Round(x0, MidpointRounding.AwayFromZero));
        }
    }

    /// <summary>Levels 0..254 stored as int8 −127..127 (ggml's range).</summary>
    private static void PackSigned(ReadOnlySpan<byte> q, Span<byte> quants)
    {
        for (int j = 0; j < 32; j++) quants[j] = (byte)(sbyte)(q[j] - 127);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = BlockFormatGuard.BlocksFromBytes(this, source.Length, destination.Length);
        for (int b = 0; b < blocks; b++)
        {
            var y = source.Slice(b * 34, 34);
            float d = QuantMath.ReadHalf(y);
            for (int j = 0; j < 32; j++) destination[b * 32 + j] = (sbyte)y[2 + j] * d;
        }
    }
}
