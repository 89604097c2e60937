using HymbaTools.Model;
using static HymbaTools.Formats.Onnx.OnnxGraphBuilder;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// The building blocks from ONNX-domain operators only (<see cref="OnnxOps.Standard"/>), for any runtime that
/// implements the chosen opset: MatMul with the weight transposed (a constant ONNX Runtime folds when it loads),
/// N-bit weights as blocked DequantizeLinear + MatMul (opset 21; the pattern ONNX Runtime fuses back into
/// MatMulNBits), RMSNormalization and RotaryEmbedding from opset 23 (decomposed below it), Conv for the depthwise
/// causal conv. The same numbers as the contrib ops up to float rounding.
/// </summary>
internal sealed partial class HymbaOnnxGraph
{
    private readonly Dictionary<string, string> _standardWeights = new(StringComparer.Ordinal);

    /// <summary>x · Wᵀ as MatMul(x, Wᵀ): Wᵀ from Transpose (float) or from blocked DequantizeLinear of the stored [K, N] levels.</summary>
    private string DequantizeOrTransposeMatMul(string x, OnnxInitializer w, string? output, string? bias)
    {
        var product = _g.Op("MatMul", [x, TransposedWeight(w)], output: bias is null ? output : null);
        return bias is null ? product : _g.Op("Add", [product, bias], output: output);
    }

    /// <summary>Wᵀ [K, N] float32 of an initializer, built once (and folded to a constant by runtimes that fold).</summary>
    private string TransposedWeight(OnnxInitializer w)
    {
        if (_standardWeights.TryGetValue(w.Name, out var cached)) return cached;
        var transposed = w.Kind == OnnxWeightKind.NBits
            ? _g.Op("DequantizeLinear", [BlocksName(w.Name), ScalesName(w.Name)], [Int("axis", 0), Int("block_size", _options.BlockSize)])
            : _g.Op("Transpose", [FloatWeight(w)], [Ints("perm", 1, 0)]);
        return _standardWeights[w.Name] = transposed;
    }

    /// <summary>
    /// Rows of an embedding table: Gather (float), or for N-bit tables (stored [d, V] for the tied head's MatMul) the
    /// ids' columns of the levels and scales, DequantizeLinear over d, transposed to [B, T, d].
    /// </summary>
    private string GatherDequantized(string table, string ids)
    {
        var w = _weights[table];
        if (!UsesDequantizeLayout(_c, table, w.Kind, _options.Ops)) return GatherPackedBlocks(table, ids);     // Gather, BitShift, Cast: ONNX ops too
        if (w.Bits != 8) throw new NotSupportedException($"{table}: a tied {w.Bits}-bit embedding cannot be gathered with ONNX ops (Gather takes no int4)");
        var levels = _g.Op("Gather", [BlocksName(table), ids], [Int("axis", 1)]);                       // [d, B, T] int8
        var scales = _g.Op("Gather", [ScalesName(table), ids], [Int("axis", 1)]);                       // [d blocks, B, T]
        var rows = _g.Op("DequantizeLinear", [levels, scales], [Int("axis", 0), Int("block_size", _options.BlockSize)]);
        return _g.Op("Transpose", [rows], [Ints("perm", 1, 2, 0)]);
    }

    /// <summary>
    /// Whether an N-bit initializer is stored in DequantizeLinear's layout ([K, N] levels, read by MatMul): every N-bit
    /// weight of a standard graph except an untied embedding, which only Gather reads and which keeps MatMulNBits's
    /// packed rows (one row per token, unpacked with BitShift; Gather takes no int4).
    /// </summary>
    public static bool UsesDequantizeLayout(HymbaConfig c, string initializer, OnnxWeightKind kind, OnnxOps ops) =>
        ops == OnnxOps.Standard && kind == OnnxWeightKind.NBits && (c.TieWordEmbeddings || initializer != W(StoredRole.TokenEmbedding));

    /// <summary>ONNX's RMSNormalization (opset 23), float32 statistics.</summary>
    private string RmsNormalization23(string x, string gain) =>
        _g.Op("RMSNormalization", [x, gain], [Int("axis", -1), FloatAttribute("epsilon", (float)_c.RmsNormEps), Int("stash_type", 1)]);

    /// <summary>x / sqrt(mean(x²) + eps) · gain from elementary ops (before opset 23; ReduceMean takes its axes as an input from opset 18).</summary>
    private string RmsNormDecomposed(string x, string gain)
    {
        var squares = _g.Op("Mul", [x, x]);
        var mean = _options.Opset >= 18
            ? _g.Op("ReduceMean", [squares, _g.Int64s(-1)], [Int("keepdims", 1)])
            : _g.Op("ReduceMean", [squares], [Ints("axes", -1), Int("keepdims", 1)]);
        var normalized = _g.Op("Div", [x, _g.Op("Sqrt", [_g.Op("Add", [mean, _g.Float((float)_c.RmsNormEps)])])]);
        return _g.Op("Mul", [normalized, gain]);
    }

    private (string Normalized, string Sum) AddThenRmsNorm(string residual, string delta, string gain)
    {
        var sum = _g.Op("Add", [residual, delta]);
        return (_ops.RmsNorm(sum, gain), sum);
    }

    /// <summary>ONNX's RotaryEmbedding (opset 23) on [B, T, heads·d_h], the tables read at this call's absolute positions.</summary>
    private string RotaryEmbedding23(string x, int heads)
    {
        var (cos, sin) = RopeTables();
        var positions = _g.Op("Tile", [Unsqueeze(_positions, 0), Shape(_batch, 1L)]);                  // [B, T]
        return _g.Op("RotaryEmbedding", [x, cos, sin, positions], [Int("interleaved", 0), Int("num_heads", heads)]);
    }

    /// <summary>Rotate-half RoPE from elementary ops: x·cos + rotate_half(x)·sin with rotate_half(x) = [-x2, x1].</summary>
    private string RopeDecomposed(string x, int heads)
    {
        var (cos, sin) = RopeTables();
        int half = _c.HeadDim / 2;
        var perHead = _g.Op("Reshape", [x, Shape(_batch, _newTokens, heads, _c.HeadDim)]);             // [B, T, H, d_h]
        string Rows(string table)
        {
            var rows = _g.Op("Gather", [table, _positions]);                                              // [T, d_h/2]
            return Unsqueeze(_g.Op("Concat", [rows, rows], [Int("axis", -1)]), 1);                       // [T, 1, d_h]
        }
        var halves = _g.Ops("Split", [perHead, _g.Int64s(half, half)], 2, [Int("axis", -1)]);
        var rotated = _g.Op("Concat", [_g.Op("Neg", [halves[1]]), halves[0]], [Int("axis", -1)]);
        var result = _g.Op("Add", [_g.Op("Mul", [perHead, Rows(cos)]), _g.Op("Mul", [rotated, Rows(sin)])]);
        return _g.Op("Reshape", [result, Shape(_batch, _newTokens, heads * _c.HeadDim)]);
    }

    /// <summary>MatMul(q, kᵀ) · 1/√d_h.</summary>
    private string MatMulScores(string queries, string keys, int keyRank)
    {
        var transposed = _g.Op("Transpose", [keys], [keyRank == 3 ? Ints("perm", 0, 2, 1) : Ints("perm", 0, 1, 3, 2)]);
        return _g.Op("Mul", [_g.Op("MatMul", [queries, transposed]), _g.Float((float)(1.0 / Math.Sqrt(_c.HeadDim)))]);
    }

    /// <summary>Conv (groups = d_in, no padding) over [state | xᵀ], then SiLU; the next state is the last k-1 inputs.</summary>
    private (string Output, string State) ConvWithConcatenatedState(string transposedInput, string kernel, string bias, string state, string presentState)
    {
        int k = _c.ConvKernel;
        var inputs = _g.Op("Concat", [state, transposedInput], [Int("axis", 2)]);                      // [B, d_in, k-1+T]
        var conv = _g.Op("Conv", [inputs, kernel, bias], [Int("group", _c.DInner), Ints("kernel_shape", k)]);
        var next = _g.Op("Slice", [inputs, _g.Int64s(-(k - 1)), _g.Int64s(long.MaxValue), _g.Int64s(2)], output: presentState);
        return (Silu(conv), next);
    }
}
