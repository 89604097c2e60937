using HymbaTools.Model;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>Element type of the exported K/V cache (`hymba export --state-dtype`).</summary>
public enum OnnxStateType
{
    /// <summary>float16 K/V (the default): half the bytes; the graph casts to float32 around its arithmetic.</summary>
    F16,
    /// <summary>float32 K/V.</summary>
    F32,
}

/// <summary>
/// The decoding state of an export (docs/architecture.md §6): which tensors, their shapes and element types, and how
/// a layer's keys and values fill the two cache entries onnxruntime-genai keeps per layer.
/// <para>
/// genai gives a layer's key and value entries one shape (read from the key input), but Hymba's keys are d_h wide and
/// its values d_v. Padding the narrower one wastes (d_v - d_h) / (2 d_v) of the cache (a quarter at 1.5B); instead
/// each head's row K‖V (d_h + d_v values, one zero appended when odd) is cut into two equal halves, the key entry and
/// the value entry, each w = ⌈(d_h + d_v) / 2⌉ wide (96 at 1.5B: K and the first 32 values, then the last 96 values).
/// </para>
/// <para>
/// K/V are float16 by default; conv and SSM state stay float32: rounded to 16 bits between calls, decoding moved
/// 2.4e-3 and 5.2e-3 (max abs logit) away from one call over the same text on the fixtures, where float32 state gives
/// 0, to save 3.9 of the 82.9 MB of state at 8K tokens at 1.5B. Sliding groups hold at most window + <see cref="SlidingSlack"/> text keys: the graph drops older
/// ones from the present it returns, as genai's windowed cache expects (genai_config's sliding_window section).
/// </para>
/// </summary>
internal sealed class HymbaStateLayout
{
    /// <summary>
    /// Keys a sliding group holds beyond its window: genai's default slack on CPU (its cache_slack), written into
    /// genai_config.json so that every execution provider allocates the same length the graph returns.
    /// </summary>
    public const int SlidingSlack = 16;

    public HymbaStateLayout(HymbaConfig config, OnnxStateType keyValueType)
    {
        Config = config;
        KeyValueType = keyValueType;
        EntryWidth = (config.HeadDim + config.VHeadDim + 1) / 2;
        var windows = config.SlidingKvWindows;
        SlidingCacheKeys = windows.Count > 0 ? windows.Values.Max() + SlidingSlack : null;
        States =
        [
            .. config.KvOwners.SelectMany(l => new[]
            {
                Entry(HymbaOnnxNames.PastKey(l.Index), HymbaOnnxNames.PresentKey(l.Index), l.Index, windows.ContainsKey(l.Index)),
                Entry(HymbaOnnxNames.PastValue(l.Index), HymbaOnnxNames.PresentValue(l.Index), l.Index, windows.ContainsKey(l.Index)),
            }),
            .. config.Layers.SelectMany(l => new[]
            {
                new StateTensor(HymbaOnnxNames.PastConv(l.Index), HymbaOnnxNames.PresentConv(l.Index), l.Index, [-1, config.DInner, config.ConvKernel - 1], DataType.Float, null),
                new StateTensor(HymbaOnnxNames.PastSsm(l.Index), HymbaOnnxNames.PresentSsm(l.Index), l.Index, [-1, config.DInner, config.SsmStateSize], DataType.Float, null),
            }),
        ];
    }

    public HymbaConfig Config { get; }
    public OnnxStateType KeyValueType { get; }

    /// <summary>Last dimension of both cache entries: half of a head's K‖V row.</summary>
    public int EntryWidth { get; }

    /// <summary>Text keys a sliding group holds at most (window + slack), or null when no group slides.</summary>
    public long? SlidingCacheKeys { get; }

    /// <summary>
    /// Every state tensor, in input order: the key and value entries of each KV-owning layer (text tokens only), then
    /// conv and SSM state of every layer.
    /// </summary>
    public IReadOnlyList<StateTensor> States { get; }

    public DataType KeyValueElementType => KeyValueType == OnnxStateType.F16 ? DataType.Float16 : DataType.Float;

    /// <summary>Where a head's keys and values lie in its K‖V row, whose halves are the two entries.</summary>
    public (int Start, int Length) KeyColumns => (0, Config.HeadDim);
    public (int Start, int Length) ValueColumns => (Config.HeadDim, Config.VHeadDim);

    /// <summary>Bytes of the whole state at batch 1 after <paramref name="textTokens"/> text tokens (sliding groups bounded).</summary>
    public long BytesAt(long textTokens) => States.Sum(s => s.BytesAt(textTokens));

    private StateTensor Entry(string past, string present, int layer, bool sliding) =>
        new(past, present, layer, [-1, Config.NumKvHeads, -2, EntryWidth], KeyValueElementType, sliding ? SlidingCacheKeys : null);

    /// <summary>The K/V element type of an export, read from its graph's first key input (exports before 0.4 are float32).</summary>
    public static OnnxStateType TypeOf(DataType keyInput) => keyInput == DataType.Float16 ? OnnxStateType.F16 : OnnxStateType.F32;
}

/// <summary>
/// One decoding-state tensor: its input and output names, its layer, its shape (-1 batch, -2 the sequence axis of
/// K/V), its element type and, for a sliding group's K/V, the most text keys it holds.
/// </summary>
internal sealed record StateTensor(string Past, string Present, int Layer, long[] Shape, DataType ElementType, long? MaxKeys)
{
    public bool IsKeyOrValue => Shape.Contains(-2);

    public int ElementBytes => ElementType == DataType.Float16 ? 2 : 4;

    /// <summary>Bytes at batch 1 after <paramref name="textTokens"/> text tokens.</summary>
    public long BytesAt(long textTokens)
    {
        long keys = MaxKeys is { } most ? Math.Min(textTokens, most) : textTokens;
        return Shape.Select(d => d switch { -1 => 1L, -2 => keys, _ => d }).Aggregate(1L, (a, b) => a * b) * ElementBytes;
    }
}
