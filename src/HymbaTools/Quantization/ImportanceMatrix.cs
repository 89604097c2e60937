using System.Globalization;
using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Model;

namespace HymbaTools.Quantization;

/// <summary>
/// Per-column importance (mean of squared input activations) for each stored linear weight, as llama.cpp's
/// imatrix. Stored as a safetensors file: one F32 vector per stored tensor name, metadata with the dataset,
/// chunk and token counts.
/// </summary>
public sealed class ImportanceMatrix
{
    public required IReadOnlyDictionary<string, float[]> Entries { get; init; }
    public required string Dataset { get; init; }
    public required int Chunks { get; init; }
    public required long Tokens { get; init; }
    /// <summary>The model it was collected on (its checkpoint directory or Hub id); empty in files written before it was recorded.</summary>
    public string Model { get; init; } = "";

    /// <summary>
    /// How many of <paramref name="config"/>'s importance-weighted tensors the matrix has an entry of the right width
    /// for: fewer than all means it was collected on another model (or another layout), and the rest is quantized
    /// without it.
    /// </summary>
    public (int Matched, int Expected) Coverage(HymbaConfig config)
    {
        var wanted = HymbaStorageLayout.For(config).Where(t => PointOf(t.Role, config.TieWordEmbeddings) is not null).ToList();
        return (wanted.Count(t => Entries.TryGetValue(t.Name, out var v) && v.Length == t.Columns), wanted.Count);
    }

    /// <summary>One warning line when the matrix does not cover the model exactly, naming what it was collected on; else null.</summary>
    public string? CoverageWarning(HymbaConfig config, string path)
    {
        var (matched, expected) = Coverage(config);
        if (matched == expected && Entries.Count == expected) return null;
        string origin = string.Join(", ", new[] { Model.Length > 0 ? $"model {Model}" : "model not recorded", Dataset.Length > 0 ? $"dataset {Dataset}" : "" }.Where(x => x.Length > 0));
        return $"warning: --imatrix: {path} matches {matched} of the {expected} importance-weighted tensors of this model ({Entries.Count} entries; collected on {origin}); " +
               "the others are quantized without it";
    }

    /// <summary>Which activation feeds which stored weight.</summary>
    internal static ActivationPoint? PointOf(StoredRole role, bool tied) => role switch
    {
        StoredRole.AttnQ or StoredRole.AttnK or StoredRole.AttnV or StoredRole.SsmIn or StoredRole.SsmGate => ActivationPoint.MixerInput,
        StoredRole.SsmXProj => ActivationPoint.SsmProjectionInput,
        StoredRole.SsmDt => ActivationPoint.DtProjectionInput,
        StoredRole.MixerOut => ActivationPoint.MixerOutputInput,
        StoredRole.FfnGate or StoredRole.FfnUp => ActivationPoint.MlpInput,
        StoredRole.FfnDown => ActivationPoint.MlpDownInput,
        StoredRole.Output => ActivationPoint.HeadInput,
        StoredRole.TokenEmbedding when tied => ActivationPoint.HeadInput,
        _ => null,
    };

    internal static ImportanceMatrix FromStatistics(HymbaConfig config, ActivationStatistics statistics, string dataset, long tokens, string model = "")
    {
        var entries = new SortedDictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var t in HymbaStorageLayout.For(config))
        {
            if (PointOf(t.Role, config.TieWordEmbeddings) is not { } point) continue;
            var values = statistics.MeanSquares(point == ActivationPoint.HeadInput ? -1 : t.Layer, point);
            if (values is not null && values.Length == t.Columns) entries[t.Name] = values;
        }
        return new ImportanceMatrix { Entries = entries, Dataset = dataset, Chunks = statistics.Chunks, Tokens = tokens, Model = model };
    }

    /// <summary>The importance of a stored tensor, or null if the matrix has none for it.</summary>
    public float[]? For(string storedName, int columns)
    {
        if (!Entries.TryGetValue(storedName, out var v)) return null;
        if (v.Length != columns) throw new InvalidRequestException("--imatrix", $"entry '{storedName}' has {v.Length} columns, the tensor has {columns} (imatrix of another model?)");
        return v;
    }

    public void Save(string path)
    {
        var entries = Entries.Select(kv => new SafetensorsEntry(kv.Key, SafetensorsDType.F32, [kv.Value.Length])).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "hymbatools-imatrix",
            ["dataset"] = Dataset,
            ["chunks"] = Chunks.ToString(CultureInfo.InvariantCulture),
            ["tokens"] = Tokens.ToString(CultureInfo.InvariantCulture),
            ["model"] = Model,
        };
        SafetensorsWriter.Write(path, entries, metadata, (e, s) => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Entries[e.Name].AsSpan())));
    }

    /// <summary>What `imatrix -o` replaces without --force: a file this class wrote (safetensors with its format marker).</summary>
    internal static OutputKind OutputKind { get; } = new("an importance matrix written by hymba imatrix", IsImportanceMatrix);

    private static bool IsImportanceMatrix(string path)
    {
        try
        {
            using var file = SafetensorsFile.Open(path);
            return file.Metadata.TryGetValue("format", out var format) && format == "hymbatools-imatrix";
        }
        catch (Exception e) when (e is HymbaInputException or IOException or UnauthorizedAccessException) { return false; }
    }

    public static ImportanceMatrix Load(string path)
    {
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("format", out var format) || format != "hymbatools-imatrix")
            throw new InvalidCheckpointException(path, "__metadata__.format", "missing or not \"hymbatools-imatrix\" (expected a file written by `hymba imatrix`)");
        var entries = new SortedDictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
        {
            if (t.DType != SafetensorsDType.F32 || t.Rank != 1) throw new InvalidCheckpointException(path, t.Name, "expected a 1-D F32 vector");
            var v = t.ToFloat32Array();
            if (v.Any(x => !float.IsFinite(x) || x < 0)) throw new InvalidCheckpointException(path, t.Name, "importance values must be finite and non-negative");
            entries[t.Name] = v;
        }
        return new ImportanceMatrix
        {
            Entries = entries,
            Dataset = file.Metadata.GetValueOrDefault("dataset", ""),
            Chunks = int.TryParse(file.Metadata.GetValueOrDefault("chunks"), CultureInfo.InvariantCulture, out int c) ? c : 0,
            Tokens = long.TryParse(file.Metadata.GetValueOrDefault("tokens"), CultureInfo.InvariantCulture, out long n) ? n : 0,
            Model = file.Metadata.GetValueOrDefault("model", ""),
        };
    }
}
