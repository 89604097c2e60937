using System.Runtime.CompilerServices;
using System.Buffers.Binary;

namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// Q5_0: 32 values, fp16 d = max/-16, q = min(31, trunc(x/d + 16.5)); low 4 bits packed as Q4_0, bit 4 of
/// element j in bit j of the little-endian u32 qh (stored before qs).
/// </summary>
internal sealed class Q5_0Format : IBlockFormat
{
    public GgmlType Type => GgmlType.Q5_0;
    public int BlockSize => 32;
    public int BlockBytes => 22;
    public bool UsesImportance => true;
    public BlockGrid Grid { get; }

    public Q5_0Format() => Grid = new GgmlBlockGrid(this, levels: 32, offset: 16, hasMin: false, Pack);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> destination, ReadOnlySpan<float> importance)
    {
        int blocks = BlockFormatGuard.Blocks(this, row.Length, destination.Length, importance);
        float sigma2 = importance.IsEmpty ? 0 : QuantMath.MeanSquare(row);
        Span<float> weight = stackalloc float[32];
        Span<sbyte> L = stackalloc sbyte[32];
        Span<byte> q = stackalloc byte[32];
        for (int b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * 32, 32);
            var y = destination.Slice(b * 22, 22);
            if (importance.IsEmpty)
            {
                if (!BlockVectors.TryQuantizeSymmetric(x, y, 32)) QuantizeBlockReference(x, y);
                continue;
            }
            var qw = importance.Slice(b * 32, 32);
            QuantMath.ImportanceWeights(x, qw, sigma2, weight);
            float d = QuantMath.MakeQxQuants(32, 16, x, L, 1, weight);
            QuantMath.WriteHalf(y, d);
            for (int j = 0; j < 32; j++) q[j] = (byte)L[j];
            Pack(q, y[2..]);
        }
    }

    /// <summary>ggml's quantize_row_q5_0_ref for one block: the definition the vector path is tested against, and its fallback.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeBlockReference(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> q = stackalloc byte[32];
        float max = QuantMath.SignedMaxByMagnitude(x);
        float d = max / -16;
        float id = d != 0 ? 1.0f / d : 0.0f;
        QuantMath.WriteHalf(y, d);
        for (int j = 0; j < 32; j++)
        {
            float xj = x[j] * id;
            q[j] = (byte)Math.Min(31, (int)(sbyte)QuantMath.TruncateX86(xj + 16.5f));
        }
        Pack(q, y[2..]);
    }

    /// <summary>Writes qh (u32, bit 4 of each value) then qs (low nibbles, j | j+16).</summary>
    internal static void Pack(ReadOnlySpan<byte> q, Span<byte> destination)
    {
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            int xi0 = q[j], xi1 = q[j + 16];
            destination[4 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= (uint)((xi0 & 0x10) >> 4) << j;
            qh |= (uint)((xi1 & 0x10) >> 4) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(destination, qh);
    }

    internal static void Unpack(ReadOnlySpan<byte> source, Span<int> q)
    {
        uint qh = BinaryPrimitives.ReadUInt32LittleEndian(source);
        for (int j = 0; j < 16; j++)
        {
            q[j] = (source[4 + j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
            q[j + 16] = (source[4 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRow(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int blocks = BlockFormatGuard.BlocksFromBytes(this, source.Length, destination.Length);
        Span<int> q = stackalloc int[32];
        for (int b = 0; b < blocks; b++)
        {
            var y = source.Slice(b * 22, 22);
            float d = QuantMath.ReadHalf(y);
            Unpack(y[2..], q);
            for (int j = 0; j < 32; j++) destination[b * 32 + j] = (q[j] - 16) * d;
        }
    }
}
