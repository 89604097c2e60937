using System.Runtime.InteropServices;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Quantization.Gptq;
using HymbaTools.Quantization.Onnx;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// Converts and writes every weight initializer of an export in layout order, one at a time, through buffers sized
/// once for the largest tensor: a fused initializer member by member into one buffer (members are rows of the same
/// width; MatMulNBits packs each row on its own, so packed members concatenate). A source tensor is read once for all
/// the stored tensors taken from it (in_proj's row blocks), and the source's mapped pages are released after each
/// initializer, so resident memory stays at the tensor in flight, not the model. Fresh arrays per tensor had left
/// hundreds of MB of large-object garbage between collections (the 1.5b preset's int4 export peaked at 4.6 GB with
/// the pages kept and fresh arrays, 1.5 GB with the pages released).
/// </summary>
internal sealed class OnnxWeightWriter
{
    private readonly IHymbaTensorSource _source;
    private readonly IReadOnlyList<OnnxInitializer> _initializers;
    private readonly int _blockSize;
    private readonly OnnxOps _ops;
    private readonly GptqLayerWalk? _walk;
    private readonly float[] _values;      // the source tensor being converted
    private readonly byte[] _bytes;        // an initializer's bytes (float data, or N-bit blocks)
    private readonly float[] _scales;      // an N-bit initializer's scales
    private readonly byte[] _layout;       // N-bit blocks rearranged for DequantizeLinear (standard ops)
    private readonly float[] _layoutScales;
    private string? _valuesOf;

    public OnnxWeightWriter(IHymbaTensorSource source, IReadOnlyList<OnnxWeight> weights, int blockSize, OnnxOps ops, GptqLayerWalk? walk)
    {
        _source = source;
        _initializers = OnnxInitializers.Plan(weights);
        _blockSize = blockSize;
        _ops = ops;
        _walk = walk;
        _values = new float[weights.Select(w => ElementsOf(w.Tensor.SourceName)).DefaultIfEmpty(0).Max()];
        long bytes = 0, scales = 0;
        foreach (var i in _initializers.Where(i => i.IsFused || i.Kind != OnnxWeightKind.Float32 || i.Derivation is not null))
        {
            bytes = Math.Max(bytes, i.Members.Sum(m => DataBytes(m)));
            if (i.Kind == OnnxWeightKind.NBits) scales = Math.Max(scales, i.Rows * BlocksPerRow(i.Columns));
        }
        _bytes = new byte[bytes];
        _scales = new float[scales];
        bool rearranged = ops == OnnxOps.Standard && scales > 0;
        _layout = rearranged ? new byte[bytes] : [];
        _layoutScales = rearranged ? new float[scales] : [];
    }

    public void WriteAll(OnnxInitializerStore store, IProgress<(long Done, long Total)>? progress, long totalBytes)
    {
        long done = 0;
        foreach (var initializer in _initializers)
        {
            Interruption.ThrowIfRequested();
            done += initializer.Members.Sum(w => w.Bytes(_blockSize));
            Write(initializer, store);
            _source.ReleaseResidentPages();
            progress?.Report((done, totalBytes));
        }
    }

    private void Write(OnnxInitializer initializer, OnnxInitializerStore store)
    {
        if (!initializer.IsFused && initializer.Kind == OnnxWeightKind.Float32)
        {
            // The common case of a float export written straight from the source values, without a copy; a derived
            // one (OnnxDerivedWeights) through the bytes buffer.
            var values = ValuesOf(initializer.First.Tensor);
            if (initializer.Derivation is { } derived)
            {
                var mapped = MemoryMarshal.Cast<byte, float>(_bytes.AsSpan(0, values.Length * sizeof(float)));
                for (int i = 0; i < values.Length; i++) mapped[i] = derived.Map(values[i]);
                values = mapped;
            }
            store.Add(initializer.Name, initializer.Shape, DataType.Float, MemoryMarshal.AsBytes(values));
            return;
        }
        int at = 0, scalesAt = 0;
        foreach (var w in initializer.Members)
        {
            var (length, scaleCount) = Convert(w, _bytes.AsSpan(at), _scales.AsSpan(scalesAt));
            at += length;
            scalesAt += scaleCount;
        }
        if (initializer.Kind != OnnxWeightKind.NBits)
        {
            store.Add(initializer.Name, initializer.Shape, initializer.Kind == OnnxWeightKind.Float16 ? DataType.Float16 : DataType.Float, _bytes.AsSpan(0, at));
            return;
        }
        int n = checked((int)initializer.Rows), k = checked((int)initializer.Columns), bits = initializer.Bits, blocks = BlocksPerRow(k);
        if (HymbaOnnxGraph.UsesDequantizeLayout(_source.Config, initializer.Name, initializer.Kind, _ops))
        {
            // DequantizeLinear's blocked layout: signed levels [K, N] (int4 packed two to a byte), scales [k_blocks, N].
            int length = DequantizeLinearLayout.Rearrange(_bytes.AsSpan(0, at), _scales.AsSpan(0, scalesAt), n, k, bits, _blockSize, _layout, _layoutScales);
            store.Add(HymbaOnnxGraph.BlocksName(initializer.Name), [k, n], bits == 4 ? DataType.Int4 : DataType.Int8, _layout.AsSpan(0, length));
            store.Add(HymbaOnnxGraph.ScalesName(initializer.Name), [blocks, n], DataType.Float, MemoryMarshal.AsBytes(_layoutScales.AsSpan(0, scalesAt)));
            return;
        }
        int blob = _blockSize * bits / 8;
        store.Add(HymbaOnnxGraph.BlocksName(initializer.Name), [n, blocks, blob], DataType.Uint8, _bytes.AsSpan(0, at));
        store.Add(HymbaOnnxGraph.ScalesName(initializer.Name), [scalesAt], DataType.Float, MemoryMarshal.AsBytes(_scales.AsSpan(0, scalesAt)));
    }

    /// <summary>One stored tensor in its ONNX representation (float32 or float16 bytes, or MatMulNBits blocks and scales) into the buffers; returns what it wrote.</summary>
    private (int Bytes, int Scales) Convert(OnnxWeight w, Span<byte> bytes, Span<float> scales)
    {
        int rows = checked((int)w.Tensor.Rows), columns = checked((int)w.Tensor.Columns);
        if (w.Kind == OnnxWeightKind.NBits)
        {
            int length = checked((int)DataBytes(w)), count = rows * BlocksPerRow(columns);
            if (_walk?.TryRound(w.Tensor) is { } rounded)
            {
                // GPTQ-rounded rows, as the operator's blocks and scales.
                var (b, s) = new MatMulNBitsGrid(w.Bits, _blockSize).Split(rounded, rows, columns);
                b.CopyTo(bytes);
                s.CopyTo(scales);
            }
            else MatMulNBitsPacker.QuantizeInto(ValuesOf(w.Tensor), rows, columns, w.Bits, _blockSize, bytes[..length], scales[..count], []);
            return (length, count);
        }
        var values = ValuesOf(w.Tensor);
        if (w.Kind == OnnxWeightKind.Float32)
        {
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
            return (values.Length * 4, 0);
        }
        var half = MemoryMarshal.Cast<byte, Half>(bytes[..(values.Length * 2)]);
        for (int i = 0; i < values.Length; i++) half[i] = (Half)values[i];
        return (values.Length * 2, 0);
    }

    private ReadOnlySpan<float> ValuesOf(StoredTensor t)
    {
        if (_valuesOf != t.SourceName)
        {
            _source.CopyToFloat32(t.SourceName, _values.AsSpan(0, checked((int)ElementsOf(t.SourceName))));
            _valuesOf = t.SourceName;
        }
        int columns = checked((int)t.Columns);
        return _values.AsSpan(checked((t.SourceRows?.Start ?? 0) * columns), checked((int)t.Rows * columns));
    }

    private long ElementsOf(string name) => _source.ShapeOf(name).Aggregate(1L, (a, b) => checked(a * b));

    private int BlocksPerRow(long columns) => checked((int)((columns + _blockSize - 1) / _blockSize));

    /// <summary>Bytes of a member's data without its scales (float values, or N-bit blocks).</summary>
    private long DataBytes(OnnxWeight w) => w.Kind switch
    {
        OnnxWeightKind.NBits => w.Tensor.Rows * BlocksPerRow(w.Tensor.Columns) * (_blockSize * w.Bits / 8),
        _ => w.Bytes(_blockSize),
    };
}

/// <summary>
/// MatMulNBits blocks rearranged for ONNX's blocked DequantizeLinear followed by MatMul (the pattern ONNX Runtime
/// fuses back into MatMulNBits): the weight transposed to [K, N] as signed levels (level - 2^(bits-1), the
/// symmetric zero point; int4 two to a byte, the even element in the low nibble) and the scales to [k_blocks, N],
/// so DequantizeLinear(axis 0, block_size) gives Wᵀ and MatMul(x, Wᵀ) = x·Wᵀ. Values are the same numbers.
/// </summary>
internal static class DequantizeLinearLayout
{
    /// <returns>the bytes written to <paramref name="levels"/></returns>
    public static int Rearrange(ReadOnlySpan<byte> blocks, ReadOnlySpan<float> scales, int n, int k, int bits, int blockSize, Span<byte> levels, Span<float> transposedScales)
    {
        int perRow = (k + blockSize - 1) / blockSize, rowBytes = perRow * blockSize * bits / 8, zero = 1 << (bits - 1);
        long count = (long)k * n;
        int length = checked((int)(bits == 4 ? (count + 1) / 2 : count));
        if (bits == 4) levels[..length].Clear();
        for (int row = 0; row < n; row++)
        {
            var packed = blocks.Slice(row * rowBytes, rowBytes);
            for (int col = 0; col < k; col++)
            {
                long at = (long)col * n + row;
                if (bits == 8)
                {
                    levels[(int)at] = (byte)(sbyte)(packed[col] - zero);
                    continue;
                }
                int level = (col & 1) == 0 ? packed[col >> 1] & 0xF : packed[col >> 1] >> 4;
                levels[(int)(at >> 1)] |= (byte)(((level - zero) & 0xF) << ((at & 1) == 0 ? 0 : 4));
            }
            for (int block = 0; block < perRow; block++) transposedScales[block * n + row] = scales[row * perRow + block];
        }
        return length;
    }
}
