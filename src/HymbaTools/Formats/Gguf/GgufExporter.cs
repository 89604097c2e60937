using HymbaTools.Checkpoints;
using HymbaTools.Model;
using HymbaTools.Quantization;

namespace HymbaTools.Formats.Gguf;

public sealed record GgufExportOptions
{
    public required QuantizationPreset Preset { get; init; }
    public IReadOnlyList<TensorTypeOverride> Overrides { get; init; } = [];
    /// <summary>Per stored-tensor importance (mean squared input activations per column), keyed by stored tensor name.</summary>
    public ImportanceMatrix? Importance { get; init; }
    public string? ModelName { get; init; }
    /// <summary>Threads that quantize (rows are independent; the output is the same for any count). Null: all cores.</summary>
    public int? Threads { get; init; }
    /// <summary>Hash the source files for provenance (reads every byte once); false writes zero hashes of the same length (dry runs).</summary>
    public bool HashSources { get; init; } = true;
    /// <summary>
    /// Count NaN/Inf values in each source tensor as its rows are converted, and report them as warnings in the
    /// result: the same check as the checkpoint reader's scan, without a second pass over the input (open the
    /// checkpoint with <see cref="CheckpointReadOptions.ScanNonFinite"/> false then).
    /// </summary>
    public bool CountNonFinite { get; init; }
}

/// <summary>What an export wrote; <see cref="Warnings"/> holds the NaN/Inf findings when they were counted.</summary>
public sealed record GgufExportResult(string Path, QuantizationPlan Plan, long FileBytes, IReadOnlyList<string> Warnings);

/// <summary>
/// Writes a Hymba checkpoint as one GGUF v3 file: hymba.* metadata (HymbaGgufSchema), general.* provenance
/// (source file hashes, tool version, preset and the per-tensor policy), tokenizer ids, and the tensors of
/// the single-file layout, each converted or quantized row chunk by row chunk while it is written.
/// </summary>
public static class GgufExporter
{
    public static string ToolVersion => "HymbaTools " + (typeof(GgufExporter).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

    public static GgufExportResult Export(HymbaCheckpoint checkpoint, string outputPath, GgufExportOptions options, IProgress<(long Done, long Total)>? progress = null)
    {
        var nonFinite = options.CountNonFinite ? new NonFiniteTally() : null;
        var (writer, plan) = Prepare(checkpoint, options, nonFinite);
        writer.Write(outputPath, progress);
        return new GgufExportResult(outputPath, plan, new FileInfo(outputPath).Length, nonFinite?.Warnings(checkpoint) ?? []);
    }

    /// <summary>Builds the complete writer (metadata, tensor infos, data callbacks) without writing anything: dry runs read its size.</summary>
    internal static (GgufWriter Writer, QuantizationPlan Plan) Prepare(HymbaCheckpoint checkpoint, GgufExportOptions options) => Prepare(checkpoint, options, null);

    private static (GgufWriter Writer, QuantizationPlan Plan) Prepare(HymbaCheckpoint checkpoint, GgufExportOptions options, NonFiniteTally? nonFinite)
    {
        var config = checkpoint.Config;
        var plan = QuantizationPlan.Create(config, options.Preset, options.Overrides);
        var writer = new GgufWriter();
        writer.Add(GgufConstants.ArchitectureKey, GgufValue.Str(HymbaGgufSchema.Architecture));
        writer.Add("general.name", GgufValue.Str(options.ModelName ?? System.IO.Path.GetFileName(checkpoint.Files.Directory.TrimEnd('/'))));
        writer.Add(GgufConstants.AlignmentKey, GgufValue.U32(GgufConstants.DefaultAlignment));
        writer.Add("general.file_type", GgufValue.U32(options.Preset.FileType));
        if (plan.Tensors.Any(t => t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)))
            writer.Add(GgufConstants.QuantizationVersionKey, GgufValue.U32(GgufConstants.QuantizationVersion));
        writer.Add("general.tool_version", GgufValue.Str(ToolVersion));
        writer.Add("general.quantization.preset", GgufValue.Str(options.Preset.Name));
        writer.Add("general.quantization.tensor_types", GgufValue.Strings(plan.Tensors.Select(t => $"{t.Tensor.Name}={GgmlTypes.NameOf(t.Type)}")));
        if (options.Overrides.Count > 0)
            writer.Add("general.quantization.overrides", GgufValue.Strings(options.Overrides.Select(o => $"{o.Pattern}={GgmlTypes.NameOf(o.Type)}")));
        if (options.Importance is { } imatrix)
        {
            writer.Add("quantize.imatrix.dataset", GgufValue.Str(imatrix.Dataset));
            writer.Add("quantize.imatrix.entries_count", GgufValue.I32(imatrix.Entries.Count));
            writer.Add("quantize.imatrix.chunks_count", GgufValue.I32(imatrix.Chunks));
        }
        var sources = new[] { checkpoint.Files.ConfigPath }.Concat(checkpoint.Tensors.Files.Select(f => f.Path))
            .Concat(checkpoint.Files.Layout == WeightLayout.Sharded ? [checkpoint.Files.WeightsPath!] : []).ToList();
        writer.Add("general.source.file_names", GgufValue.Strings(sources.Select(s => System.IO.Path.GetFileName(s))));
        if (options.HashSources)
        {
            // Hashing the sources (~1.8 s for 3 GB) runs beside the quantizer and is patched in after the data.
            var hashing = Task.Run(() => sources.Select(HymbaTools.Common.FileSha256.Of).ToArray());
            writer.AddDeferredDigests("general.source.file_sha256", sources.Count, GgufWriter.Sha256HexLength, () => hashing.GetAwaiter().GetResult());
        }
        else
        {
            writer.Add("general.source.file_sha256", GgufValue.Strings(sources.Select(_ => new string('0', 64))));
        }
        HymbaGgufSchema.WriteMetadata(writer, config);
        writer.Add(HymbaGgufSchema.BosTokenId, GgufValue.U32((uint)config.BosTokenId));
        writer.Add(HymbaGgufSchema.EosTokenId, GgufValue.U32((uint)config.EosTokenId));
        writer.Add(HymbaGgufSchema.PadTokenId, GgufValue.U32((uint)config.PadTokenId));
        GgufTokenizerMetadata.AddIfPresent(writer, checkpoint.Files.Directory, config);

        foreach (var p in plan.Tensors)
        {
            var t = p.Tensor;
            long firstRow = t.SourceRows?.Start ?? 0;
            int cols = checked((int)t.Columns);
            var importance = options.Importance?.For(t.Name, cols);
            // The source tensor is looked up when its data is written, so a dry run works on config.json alone.
            writer.AddTensor(new GgufTensorEntry(t.Name, t.Shape.Reverse().ToArray(), p.Type, stream =>
            {
                var source = checkpoint.Get(t.SourceName);
                var counter = nonFinite?.Counter(source.Name);
                TensorQuantizer.Quantize(p.Type, t.Rows, cols, (first, count, dst) =>
                {
                    source.CopyElementsToFloat32((firstRow + first) * cols, (long)count * cols, dst);
                    counter?.Add(dst[..(count * cols)]);
                }, importance, stream, options.Threads);
                source.ReleaseResidentPages();   // streamed: resident memory stays bounded by the tensor in flight
            }));
        }
        writer.AddTensorChecksums();
        return (writer, plan);
    }

    /// <summary>
    /// NaN/Inf counts per source tensor, gathered while rows are converted; the row blocks of a split tensor
    /// (in_proj) add into one count. Each source row is written once in a GGUF (a tied head is not stored), so
    /// nothing is counted twice.
    /// </summary>
    private sealed class NonFiniteTally
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RowCounter> _counts = new(StringComparer.Ordinal);

        public RowCounter Counter(string sourceName) => _counts.GetOrAdd(sourceName, _ => new RowCounter());

        /// <summary>One warning per affected tensor, in name order, worded as the checkpoint reader's scan words them.</summary>
        public List<string> Warnings(HymbaCheckpoint checkpoint) =>
            _counts.Where(c => c.Value.Count > 0)
                .OrderBy(c => c.Key, StringComparer.Ordinal)
                .Select(c => HymbaCheckpoint.NonFiniteWarning(checkpoint.Get(c.Key), c.Value.Count))
                .ToList();
    }

    private sealed class RowCounter
    {
        private long _count;
        public long Count => Interlocked.Read(ref _count);

        public void Add(ReadOnlySpan<float> values)
        {
            long bad = NonFiniteScanner.Count(System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(values), 0x7f800000u);
            if (bad != 0) Interlocked.Add(ref _count, bad);
        }
    }
}
