using System.Text.RegularExpressions;
using HymbaTools.Common;
using HymbaTools.Model;

namespace HymbaTools.Quantization;

/// <summary>A user override: tensors whose name matches the pattern get the type (when the shape allows it).</summary>
public sealed record TensorTypeOverride(Regex Pattern, GgmlType Type)
{
    /// <summary>Parses REGEX=TYPE (as llama-quantize's --tensor-type).</summary>
    public static TensorTypeOverride Parse(string text)
    {
        int eq = text.LastIndexOf('=');
        if (eq <= 0 || eq == text.Length - 1) throw new InvalidRequestException("--tensor-type", $"'{text}' is not REGEX=TYPE");
        string typeName = text[(eq + 1)..];
        if (!GgmlTypes.TryParse(typeName, out var type) || !BlockFormats.BlockFormatRegistry.TryGet(type, out _))
            throw new InvalidRequestException("--tensor-type", $"'{typeName}' is not a supported type (expected one of {string.Join(", ", BlockFormats.BlockFormatRegistry.Supported.Select(GgmlTypes.NameOf))})");
        Regex regex;
        try { regex = new Regex(text[..eq], RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)); }
        catch (ArgumentException e) { throw new InvalidRequestException("--tensor-type", $"'{text[..eq]}' is not a valid regular expression ({e.Message})"); }
        return new TensorTypeOverride(regex, type);
    }
}

/// <summary>The type chosen for one stored tensor and why.</summary>
public sealed record PlannedTensor(StoredTensor Tensor, GgmlType Type, GgmlType? Requested, string Reason)
{
    public long Bytes => Tensor.Rows * GgmlTypes.RowBytes(Type, Tensor.Columns);
    public bool IsFallback => Requested is { } r && r != Type;
}

/// <summary>
/// Which tensor is stored in which type, for a Hymba model and a preset (section "Precision policy" of the
/// README). Rules, in order:
/// 1. Never quantized, always F32: 1-D tensors (norms, biases, D, dt bias), A_log, the conv1d kernel and the
///    meta tokens: they are tiny and feed exponentials or the state recurrence directly.
/// 2. x_proj and dt_proj (which produce Δ, B and C of the scan) stay F16 in block presets: 0.4 % of the
///    weights, and dt_proj's rows (the dt rank, 100 at 1.5B) do not fit a 32-block anyway.
/// 3. Embedding: tied (it is also the output head) gets the preset's head type; untied token embeddings the
///    base type; an untied head the head type.
/// 4. K-mixtures bump attn_v and ffn_down on "more bits" layers (i &lt; n/8, i &gt;= 7n/8, (i - n/8) % 3 == 2).
/// 5. --tensor-type overrides apply to linear weights.
/// 6. Shape fallback when the row length is not a multiple of the block size (Hymba's 1600/3200/5504 never fit
///    256): Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0 (llama-quantize's table), then F16 if 32 does not fit either.
/// </summary>
public sealed class QuantizationPlan
{
    private QuantizationPlan(QuantizationPreset preset, IReadOnlyList<PlannedTensor> tensors)
    {
        Preset = preset;
        Tensors = tensors;
    }

    public QuantizationPreset Preset { get; }
    public IReadOnlyList<PlannedTensor> Tensors { get; }
    public long TotalBytes => Tensors.Sum(t => t.Bytes);
    public long TotalParameters => Tensors.Sum(t => t.Tensor.ElementCount);
    public double BitsPerWeight => 8.0 * TotalBytes / TotalParameters;
    public IEnumerable<PlannedTensor> Fallbacks => Tensors.Where(t => t.IsFallback);

    private static readonly Dictionary<GgmlType, GgmlType> ShapeFallback = new()
    {
        [GgmlType.Q4_K] = GgmlType.Q5_0,
        [GgmlType.Q5_K] = GgmlType.Q5_1,
        [GgmlType.Q6_K] = GgmlType.Q8_0,
    };

    public static QuantizationPlan Create(HymbaConfig config, QuantizationPreset preset, IReadOnlyList<TensorTypeOverride>? overrides = null)
    {
        overrides ??= [];
        int n = config.NumLayers;
        var planned = new List<PlannedTensor>();
        foreach (var t in HymbaStorageLayout.For(config))
        {
            if (!t.IsMatrix || !HymbaStorageLayout.IsLinearWeight(t.Role))
            {
                planned.Add(new PlannedTensor(t, GgmlType.F32, null, t.IsMatrix ? "kept F32 (SSM state parameter / meta tokens)" : "kept F32 (1-D)"));
                continue;
            }
            var (requested, reason) = Requested(config, preset, t, n);
            foreach (var o in overrides)
                if (o.Pattern.IsMatch(t.Name)) { requested = o.Type; reason = $"--tensor-type {o.Pattern}={GgmlTypes.NameOf(o.Type)}"; }
            var type = requested;
            while (!GgmlTypes.FitsRow(type, t.Columns))
            {
                var next = ShapeFallback.TryGetValue(type, out var f) ? f : GgmlType.F16;
                reason += $"; {t.Columns} columns not a multiple of {GgmlTypes.NameOf(type)}'s {GgmlTypes.Of(type).BlockSize}: fallback {GgmlTypes.NameOf(next)}";
                type = next;
            }
            planned.Add(new PlannedTensor(t, type, requested, reason));
        }
        return new QuantizationPlan(preset, planned);
    }

    /// <summary>
    /// A plan whose linear weights take the given types (a bit budget's choice; every type must fit its tensor's
    /// rows, so there is no fallback); the other tensors follow rule 1 (F32).
    /// </summary>
    public static QuantizationPlan FromChoices(HymbaConfig config, QuantizationPreset preset, IReadOnlyDictionary<string, (GgmlType Type, string Reason)> choices)
    {
        var planned = new List<PlannedTensor>();
        foreach (var t in HymbaStorageLayout.For(config))
        {
            if (!t.IsMatrix || !HymbaStorageLayout.IsLinearWeight(t.Role))
            {
                planned.Add(new PlannedTensor(t, GgmlType.F32, null, t.IsMatrix ? "kept F32 (SSM state parameter / meta tokens)" : "kept F32 (1-D)"));
                continue;
            }
            if (!choices.TryGetValue(t.Name, out var choice)) throw new ArgumentException($"no type chosen for {t.Name}");
            if (!GgmlTypes.FitsRow(choice.Type, t.Columns)) throw new ArgumentException($"{GgmlTypes.NameOf(choice.Type)} does not fit the {t.Columns} columns of {t.Name}");
            planned.Add(new PlannedTensor(t, choice.Type, choice.Type, choice.Reason));
        }
        return new QuantizationPlan(preset, planned);
    }

    private static (GgmlType Type, string Reason) Requested(HymbaConfig config, QuantizationPreset preset, StoredTensor t, int layers)
    {
        if (preset.IsFloat) return (preset.Base, "preset");
        switch (t.Role)
        {
            case StoredRole.SsmXProj when preset.XProj != GgmlType.F16:
                return (preset.XProj, "SSM Δ/B/C projection, 8 bits by the preset");
            case StoredRole.SsmXProj or StoredRole.SsmDt:
                return (GgmlType.F16, "SSM Δ/B/C projection kept F16");
            case StoredRole.TokenEmbedding:
                return config.TieWordEmbeddings ? (preset.TiedEmbedding, "tied embedding = output head") : (preset.Base, "token embedding");
            case StoredRole.Output:
                return (preset.Output, "output head");
            case StoredRole.AttnV or StoredRole.FfnDown when preset.Bumped is { } bump && preset.BumpedRoles.Contains(t.Role) && MoreBits(t.Layer, layers):
                return (bump, "more-bits layer");
            default:
                return (preset.Base, "preset");
        }
    }

    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between.</summary>
    public static bool MoreBits(int layer, int layers) => layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    public string ToText()
    {
        var table = new Common.TextTable("tensor", "shape", "type", "bytes", "reason");
        foreach (var p in Tensors)
            table.Add(p.Tensor.Name, "[" + string.Join(", ", p.Tensor.Shape) + "]", GgmlTypes.NameOf(p.Type), p.Bytes, p.Reason);
        var fallbacks = Fallbacks.ToList();
        return $"preset {Preset.Name}: {Preset.Description}\n{table}" +
               $"\n{Tensors.Count} tensors, {TotalParameters:N0} parameters, {TotalBytes:N0} bytes of tensor data, {BitsPerWeight:F3} bits per weight" +
               (fallbacks.Count > 0 ? $"\n{fallbacks.Count} shape fallback(s): " + string.Join(", ", fallbacks.GroupBy(f => $"{GgmlTypes.NameOf(f.Requested!.Value)}->{GgmlTypes.NameOf(f.Type)}").Select(g => $"{g.Key} x{g.Count()}")) : "") + "\n";
    }
}
