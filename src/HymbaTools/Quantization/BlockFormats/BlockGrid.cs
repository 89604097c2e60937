namespace HymbaTools.Quantization.BlockFormats;

/// <summary>The parameters of one block once chosen: scale and offset as the decoder reads them, and their stored bits.</summary>
internal readonly record struct BlockScale(float D, float M, ushort DBits, ushort MBits);

/// <summary>
/// The representable values of one block type, for rounding that is not the codec's own (error-compensated
/// rounding): choose a block's scale from its current values, find the level nearest a value under that scale,
/// and write a row from chosen scales and levels in the type's exact layout. Each codec owns its grid
/// (<see cref="IBlockFormat.Grid"/>), so a new block type is one class.
/// </summary>
internal abstract class BlockGrid
{
    public abstract int BlockSize { get; }
    /// <summary>Bytes of one row of <paramref name="columns"/> values in the written layout.</summary>
    public abstract long RowBytes(int columns);
    /// <summary>The block's scale, chosen from its current values by the type's own search (importance-weighted when given).</summary>
    public abstract BlockScale Choose(ReadOnlySpan<float> block, ReadOnlySpan<float> importance);

    /// <summary>
    /// <see cref="Choose"/> for several blocks of the same columns (one per row of a tile, one after the other in
    /// <paramref name="blocks"/>), with the same results; a grid may search them together (IQ4_NL: eight blocks per vector).
    /// </summary>
    public virtual void ChooseBlocks(ReadOnlySpan<float> blocks, ReadOnlySpan<float> importance, Span<BlockScale> scales)
    {
        for (int b = 0; b < scales.Length; b++) scales[b] = Choose(blocks.Slice(b * BlockSize, BlockSize), importance);
    }
    /// <summary>The level index whose value is nearest to <paramref name="value"/>.</summary>
    public abstract int Nearest(in BlockScale scale, float value);
    /// <summary>The value a decoder reads for a level (the same float arithmetic as the dequantizer).</summary>
    public abstract float Value(in BlockScale scale, int level);
    /// <summary>Writes one row: its block scales and one level per value.</summary>
    public abstract void WriteRow(ReadOnlySpan<BlockScale> scales, ReadOnlySpan<byte> levels, Span<byte> destination);

    /// <summary>The grid of a ggml type, or null when its codec has none (floats, K types).</summary>
    public static BlockGrid? ForGgml(GgmlType type) => BlockFormatRegistry.TryGet(type, out var format) ? format.Grid : null;
}

/// <summary>Writes a block's 32 levels into its quant bytes (what follows the fp16 scale, and min when there is one).</summary>
internal delegate void LevelPacking(ReadOnlySpan<byte> levels, Span<byte> quants);

/// <summary>
/// A 32-value ggml block: an fp16 scale d (and an fp16 min m for the _1 types) followed by packed levels. The scale is
/// chosen by the codec's own quantizer on the block (the same search and importance weighting as a plain export), and
/// a level reads (q − offset)·d, q·d + m, or d·table[q] for a non-linear grid, as the codec's dequantizer does.
/// </summary>
internal sealed class GgmlBlockGrid : BlockGrid
{
    private readonly IBlockFormat _format;
    private readonly int _levels, _offset;
    private readonly bool _hasMin;
    private readonly LevelPacking _pack;
    private readonly sbyte[]? _table;
    private readonly float[]? _midpoints;
    private readonly int _zeroLevel;
    private readonly bool _blockLocal;

    /// <param name="levels">number of levels (q is 0 .. levels-1)</param>
    /// <param name="offset">the level that reads 0 for symmetric grids (q − offset)</param>
    /// <param name="hasMin">an fp16 min follows the scale and levels read q·d + m</param>
    /// <param name="table">non-linear levels in increasing order: q reads d·table[q]</param>
    /// <param name="weightsPerBlock">
    /// the codec's importance-weighted search reads nothing beyond the block (its plain search never does), so blocks
    /// can be quantized as one row (<see cref="ChooseBlocks"/>)
    /// </param>
    public GgmlBlockGrid(IBlockFormat format, int levels, int offset, bool hasMin, LevelPacking pack, ReadOnlySpan<sbyte> table = default, bool weightsPerBlock = false)
    {
        if (format.BlockSize != 32) throw new ArgumentException("ggml grids here are 32-value blocks", nameof(format));
        _format = format;
        _levels = levels;
        _offset = offset;
        _hasMin = hasMin;
        _pack = pack;
        _table = table.IsEmpty ? null : table.ToArray();
        if (_table is not null)
        {
            _midpoints = [.. _table.Zip(_table.Skip(1), (a, b) => (a + b) / 2f)];
            _zeroLevel = Array.IndexOf(_table, _table.MinBy(Math.Abs));   // what every level reads when d = 0
        }
        _blockLocal = weightsPerBlock || !format.UsesImportance;
    }

    /// <summary>Levels 0..15 as nibbles: byte j holds element j (low) and j + 16 (high), as Q4_0, Q4_1 and IQ4_NL store them.</summary>
    public static void PackNibbles(ReadOnlySpan<byte> q, Span<byte> quants)
    {
        for (int j = 0; j < 16; j++) quants[j] = (byte)(q[j] | (q[j + 16] << 4));
    }

    public override int BlockSize => 32;

    public override long RowBytes(int columns) => GgmlTypes.RowBytes(_format.Type, columns);

    public override BlockScale Choose(ReadOnlySpan<float> block, ReadOnlySpan<float> importance)
    {
        Span<byte> bytes = stackalloc byte[_format.BlockBytes];
        _format.QuantizeRow(block, bytes, _format.UsesImportance ? importance : default);
        ushort d = (ushort)(bytes[0] | (bytes[1] << 8));
        ushort m = _hasMin ? (ushort)(bytes[2] | (bytes[3] << 8)) : (ushort)0;
        return new BlockScale(QuantMath.FromHalfBits(d), _hasMin ? QuantMath.FromHalfBits(m) : 0f, d, m);
    }

    public override void ChooseBlocks(ReadOnlySpan<float> blocks, ReadOnlySpan<float> importance, Span<BlockScale> scales)
    {
        bool weighted = _format.UsesImportance && !importance.IsEmpty;
        if (weighted && !_blockLocal)
        {
            base.ChooseBlocks(blocks, importance, scales);   // the weighted search reads its row's mean square: one block at a time
            return;
        }
        int count = scales.Length, bytes = _format.BlockBytes;
        var quantized = new byte[count * bytes];
        float[]? repeated = null;
        if (weighted)
        {
            repeated = new float[count * 32];
            for (int b = 0; b < count; b++) importance.CopyTo(repeated.AsSpan(b * 32, 32));
        }
        _format.QuantizeRow(blocks[..(count * 32)], quantized, repeated);
        for (int b = 0; b < count; b++)
        {
            var y = quantized.AsSpan(b * bytes, bytes);
            ushort d = (ushort)(y[0] | (y[1] << 8));
            ushort m = _hasMin ? (ushort)(y[2] | (y[3] << 8)) : (ushort)0;
            scales[b] = new BlockScale(QuantMath.FromHalfBits(d), _hasMin ? QuantMath.FromHalfBits(m) : 0f, d, m);
        }
    }

    public override int Nearest(in BlockScale scale, float value)
    {
        if (_table is not null) return NearestInTable(scale.D, value);
        if (scale.D == 0 || !float.IsFinite(scale.D)) return _hasMin ? 0 : _offset;
        float t = _hasMin ? (value - scale.M) / scale.D : value / scale.D;
        if (float.IsNaN(t)) return _hasMin ? 0 : _offset;
        int q = (int)MathF.Round(Math.Clamp(t, -1e6f, 1e6f), MidpointRounding.ToEven) + _offset;
        return Math.Clamp(q, 0, _levels - 1);
    }

    /// <summary>The table level nearest value / d: the number of midpoints between levels below it (ties and NaN to the lower level).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private int NearestInTable(float d, float value)
    {
        if (d == 0 || !float.IsFinite(d)) return _zeroLevel;
        float t = value / d;
        int q = 0;
        foreach (float midpoint in _midpoints!) q += t > midpoint ? 1 : 0;
        return q;
    }

    public override float Value(in BlockScale scale, int level) =>
        _table is not null ? scale.D * _table[level] : _hasMin ? level * scale.D + scale.M : (level - _offset) * scale.D;

    public override void WriteRow(ReadOnlySpan<BlockScale> scales, ReadOnlySpan<byte> levels, Span<byte> destination)
    {
        int bytes = _format.BlockBytes;
        for (int b = 0; b < scales.Length; b++)
        {
            var y = destination.Slice(b * bytes, bytes);
            y[0] = (byte)scales[b].DBits;
            y[1] = (byte)(scales[b].DBits >> 8);
            int at = 2;
            if (_hasMin)
            {
                y[2] = (byte)scales[b].MBits;
                y[3] = (byte)(scales[b].MBits >> 8);
                at = 4;
            }
            _pack(levels.Slice(b * 32, 32), y[at..]);
        }
    }
}
