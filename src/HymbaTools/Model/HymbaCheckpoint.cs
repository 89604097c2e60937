using HymbaTools.Checkpoints;
using HymbaTools.Common;

namespace HymbaTools.Model;

public sealed record CheckpointReadOptions
{
    /// <summary>Treat NaN/Inf in a weight as an error instead of a warning.</summary>
    public bool Strict { get; init; }
    /// <summary>Scan every weight for NaN/Inf (reads all bytes once).</summary>
    public bool ScanNonFinite { get; init; } = true;
    public SafetensorsLimits Limits { get; init; } = SafetensorsLimits.Default;
}

/// <summary>
/// A HuggingFace Hymba checkpoint: the typed config plus the tensors, validated against the catalog
/// (every expected tensor present with the right shape and a float dtype, nothing unexpected, all
/// problems in one error). Tensors stay memory-mapped; nothing is loaded until asked for.
/// </summary>
public sealed class HymbaCheckpoint : IDisposable
{
    private HymbaCheckpoint(CheckpointDirectory files, HymbaConfig config, TensorSet tensors, IReadOnlyList<ExpectedTensor> catalog, IReadOnlyList<string> warnings)
    {
        Files = files;
        Config = config;
        Tensors = tensors;
        Catalog = catalog;
        Warnings = warnings;
    }

    public CheckpointDirectory Files { get; }
    public HymbaConfig Config { get; }
    public TensorSet Tensors { get; }
    public IReadOnlyList<ExpectedTensor> Catalog { get; }
    public IReadOnlyList<string> Warnings { get; }
    public bool HasWeights => Files.Layout != WeightLayout.None;

    public static HymbaCheckpoint Open(string path, CheckpointReadOptions? options = null)
    {
        options ??= new CheckpointReadOptions();
        var files = CheckpointDirectory.Locate(path);
        var config = HymbaConfig.Load(files.ConfigPath);
        var tensors = files.OpenTensors(options.Limits);
        try
        {
            var catalog = HymbaTensorCatalog.For(config);
            var warnings = new List<string>();
            if (files.Layout != WeightLayout.None)
            {
                Validate(files, config, tensors, catalog);
                if (options.ScanNonFinite) ScanNonFinite(tensors, options.Strict, warnings);
            }
            return new HymbaCheckpoint(files, config, tensors, catalog, warnings);
        }
        catch
        {
            tensors.Dispose();
            throw;
        }
    }

    /// <summary>The stored tensor for a catalog name; a tied lm_head resolves to the embedding.</summary>
    public TensorView Get(string name)
    {
        if (Tensors.TryGet(name, out var view)) return view;
        if (name == HymbaTensorCatalog.LmHead && Config.TieWordEmbeddings && Tensors.TryGet(HymbaTensorCatalog.EmbedTokens, out var embed)) return embed;
        throw new InvalidCheckpointException(Files.Directory, name, "tensor is not in the checkpoint");
    }

    public TensorView Get(int layer, TensorRole role) => Get(HymbaTensorCatalog.LayerTensorName(layer, role));

    /// <summary>Lets the kernel drop every weight file's pages from the resident set (a layer-by-layer walk calls it per layer).</summary>
    public void ReleaseResidentPages()
    {
        foreach (var view in Tensors.ByName.Values.GroupBy(v => v.FilePath, StringComparer.Ordinal).Select(g => g.First())) view.ReleaseResidentPages();
    }

    private static void Validate(CheckpointDirectory files, HymbaConfig config, TensorSet tensors, IReadOnlyList<ExpectedTensor> catalog)
    {
        var problems = new List<(string Name, string Problem)>();
        var expectedNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in catalog)
        {
            expectedNames.Add(e.Name);
            if (!tensors.TryGet(e.Name, out var t))
            {
                problems.Add((e.Name, $"missing (expected shape {ShapeMath.Format(e.Shape)})"));
                continue;
            }
            if (!t.Shape.SequenceEqual(e.Shape))
            {
                string hint = e.Role == TensorRole.InProj ? $" ({(config.Layers[e.Layer].OwnsKv ? "KV-owning layer: Q|K|V|x|z rows" : $"KV consumer of layer {config.Layers[e.Layer].KvSource}: Q|x|z rows")})" : "";
                problems.Add((e.Name, $"shape {ShapeMath.Format(t.Shape)}, expected {ShapeMath.Format(e.Shape)}{hint}"));
            }
            if (!SafetensorsDTypes.IsFloatWeight(t.DType))
                problems.Add((e.Name, $"dtype {SafetensorsDTypes.NameOf(t.DType)} is not supported (expected F32, F16 or BF16)"));
        }
        if (config.TieWordEmbeddings && tensors.TryGet(HymbaTensorCatalog.LmHead, out var lm))
        {
            // Some exporters store the tied head anyway; accept it only if it is the same shape.
            expectedNames.Add(HymbaTensorCatalog.LmHead);
            if (!lm.Shape.SequenceEqual(new long[] { config.VocabSize, config.HiddenSize }))
                problems.Add((lm.Name, $"shape {ShapeMath.Format(lm.Shape)}, expected [{config.VocabSize}, {config.HiddenSize}]"));
        }
        foreach (var t in tensors.InNameOrder)
            if (!expectedNames.Contains(t.Name))
                problems.Add((t.Name, $"unexpected tensor {SafetensorsDTypes.NameOf(t.DType)}{ShapeMath.Format(t.Shape)} (not part of a Hymba checkpoint with this config)"));
        if (problems.Count == 0) return;

        string where = files.WeightsPath ?? files.Directory;
        string summary = problems.Count == 1
            ? problems[0].Problem
            : $"{problems.Count} problems: " + string.Join("; ", problems.Take(12).Select(p => $"{p.Name}: {p.Problem}")) + (problems.Count > 12 ? "; ..." : "");
        throw new InvalidCheckpointException(where, problems.Count == 1 ? problems[0].Name : problems[0].Name, summary);
    }

    private static void ScanNonFinite(TensorSet tensors, bool strict, List<string> warnings)
    {
        foreach (var t in tensors.InNameOrder)
        {
            if (!SafetensorsDTypes.IsFloatWeight(t.DType)) continue;
            long bad = NonFiniteScanner.Count(t);
            t.ReleaseResidentPages();   // a pass over the whole checkpoint must not leave it all resident
            if (bad == 0) continue;
            if (strict) throw new InvalidCheckpointException(t.FilePath, t.Name, NonFiniteMessage(bad) + " (--strict)");
            warnings.Add(NonFiniteWarning(t, bad));
        }
    }

    /// <summary>The wording of a NaN/Inf finding (also used by exports that count while converting, after "file: tensor").</summary>
    internal static string NonFiniteMessage(long count) => $"{count} NaN/Inf value(s) in weight";

    private static string NonFiniteWarning(TensorView tensor, long count) =>
        $"{Path.GetFileName(tensor.FilePath)}: {tensor.Name}: {NonFiniteMessage(count)}";

    public void Dispose() => Tensors.Dispose();
}

/// <summary>Adapts a HuggingFace checkpoint to the forward pass's weight source.</summary>
public sealed class CheckpointTensorSource(HymbaCheckpoint checkpoint) : IHymbaTensorSource
{
    public HymbaConfig Config => checkpoint.Config;
    public bool Contains(string name) => checkpoint.Tensors.TryGet(name, out _) || (name == HymbaTensorCatalog.LmHead && checkpoint.Config.TieWordEmbeddings);
    public IReadOnlyList<long> ShapeOf(string name) => checkpoint.Get(name).Shape;
    public void CopyToFloat32(string name, Span<float> destination) => checkpoint.Get(name).CopyToFloat32(destination);
    public void ReleaseResidentPages() => checkpoint.ReleaseResidentPages();
}
