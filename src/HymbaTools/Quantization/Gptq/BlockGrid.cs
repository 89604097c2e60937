using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Quantization.Gptq;

/// <summary>The parameters of one block once chosen: scale and offset as the decoder reads them, and their stored bits.</summary>
internal readonly record struct BlockScale(float D, float M, ushort DBits, ushort MBits, int Zero);

/// <summary>
/// The representable values of one block type, for rounding that is not the codec's own (error-compensated
/// rounding): choose a block's scale from its current values, find the level nearest a value under that scale,
/// and write a row from chosen scales and levels in the type's exact layout.
/// </summary>
internal abstract class BlockGrid
{
    public abstract int BlockSize { get; }
    /// <summary>Bytes of one row of <paramref name="columns"/> values in the written layout.</summary>
    public abstract long RowBytes(int columns);
    /// <summary>The block's scale, chosen from its current values by the type's own search (importance-weighted when given).</summary>
    public abstract BlockScale Choose(ReadOnlySpan<float> block, ReadOnlySpan<float> importance);
    /// <summary>The level index whose value is nearest to <paramref name="value"/>.</summary>
    public abstract int Nearest(in BlockScale scale, float value);
    /// <summary>The value a decoder reads for a level (the same float arithmetic as the dequantizer).</summary>
    public abstract float Value(in BlockScale scale, int level);
    /// <summary>Writes one row: its block scales and one level per value.</summary>
    public abstract void WriteRow(ReadOnlySpan<BlockScale> scales, ReadOnlySpan<byte> levels, Span<byte> destination);

    /// <summary>The ggml grid of a type, or null when the type has no 32-value block grid here (floats, K types).</summary>
    public static BlockGrid? ForGgml(GgmlType type) => type switch
    {
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q8_0 or GgmlType.IQ4_NL => new GgmlBlockGrid(type),
        _ => null,
    };
}

/// <summary>
/// The 32-value ggml types: scale (and min) chosen by ggml's own quantizer on the block (the same search and
/// importance weighting as a plain export), levels as the dequantizer reads them.
/// </summary>
internal sealed class GgmlBlockGrid : BlockGrid
{
    private readonly GgmlType _type;
    private readonly IBlockFormat _format;
    /// <summary>Value of level q is (q - Offset) * d (+ m for the types with a min); IQ4_NL reads its table.</summary>
    private readonly int _offset, _levels;
    private readonly bool _hasMin;

    public GgmlBlockGrid(GgmlType type)
    {
        _type = type;
        _format = BlockFormatRegistry.Get(type);
        (_offset, _levels, _hasMin) = type switch
        {
            GgmlType.Q4_0 => (8, 16, false),
            GgmlType.IQ4_NL => (0, 16, false),
            GgmlType.Q4_1 => (0, 16, true),
            GgmlType.Q5_0 => (16, 32, false),
            GgmlType.Q5_1 => (0, 32, true),
            GgmlType.Q8_0 => (127, 255, false),   // stored as int8 -127..127 (ggml's range)
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
    }

    public override int BlockSize => 32;

    public override long RowBytes(int columns) => GgmlTypes.RowBytes(_type, columns);

    public override BlockScale Choose(ReadOnlySpan<float> block, ReadOnlySpan<float> importance)
    {
        Span<byte> bytes = stackalloc byte[_format.BlockBytes];
        _format.QuantizeRow(block, bytes, _format.UsesImportance ? importance : default);
        ushort d = (ushort)(bytes[0] | (bytes[1] << 8));
        ushort m = _hasMin ? (ushort)(bytes[2] | (bytes[3] << 8)) : (ushort)0;
        return new BlockScale(QuantMath.FromHalfBits(d), _hasMin ? QuantMath.FromHalfBits(m) : 0f, d, m, _offset);
    }

    public override int Nearest(in BlockScale scale, float value)
    {
        if (_type == GgmlType.IQ4_NL) return NearestNonLinear(scale.D, value);
        if (scale.D == 0 || !float.IsFinite(scale.D)) return _hasMin ? 0 : _offset;
        float t = _hasMin ? (value - scale.M) / scale.D : value / scale.D;
        if (float.IsNaN(t)) return _hasMin ? 0 : _offset;
        int q = (int)MathF.Round(Math.Clamp(t, -1e6f, 1e6f), MidpointRounding.ToEven) + (_hasMin ? 0 : _offset);
        return Math.Clamp(q, 0, _levels - 1);
    }

    private static int NearestNonLinear(float d, float value)
    {
        var levels = IQ4_NLFormat.Levels;
        if (d == 0 || !float.IsFinite(d)) return 8;   // every level reads 0
        float t = value / d;
        int best = 0;
        float bestError = float.PositiveInfinity;
        for (int q = 0; q < levels.Length; q++)
        {
            float e = MathF.Abs(t - levels[q]);
            if (e < bestError) { bestError = e; best = q; }
        }
        return best;
    }

    public override float Value(in BlockScale scale, int level) => _type switch
    {
        GgmlType.IQ4_NL => scale.D * IQ4_NLFormat.Levels[level],
        GgmlType.Q4_1 or GgmlType.Q5_1 => level * scale.D + scale.M,
        _ => (level - _offset) * scale.D,
    };

    public override void WriteRow(ReadOnlySpan<BlockScale> scales, ReadOnlySpan<byte> levels, Span<byte> destination)
    {
        int bytes = _format.BlockBytes;
        for (int b = 0; b < scales.Length; b++)
        {
            var y = destination.Slice(b * bytes, bytes);
            var q = levels.Slice(b * 32, 32);
            y[0] = (byte)scales[b].DBits;
            y[1] = (byte)(scales[b].DBits >> 8);
            int at = 2;
            if (_hasMin)
            {
                y[2] = (byte)scales[b].MBits;
                y[3] = (byte)(scales[b].MBits >> 8);
                at = 4;
            }
            switch (_type)
            {
                case GgmlType.Q5_0 or GgmlType.Q5_1:
                    Q5_0Format.Pack(q, y[at..]);
                    break;
                case GgmlType.Q8_0:
                    for (int j = 0; j < 32; j++) y[at + j] = (byte)(sbyte)(q[j] - _offset);
                    break;
                default:
                    for (int j = 0; j < 16; j++) y[at + j] = (byte)(q[j] | (q[j + 16] << 4));
                    break;
            }
        }
    }
}
