using HymbaTools.Common;
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
    /// checkpoint with <see cref="CheckpointReadOptions.ScanNonFinite"/> false then). Tensors copied unchanged
    /// from a GGUF input are not counted.
    /// </summary>
    public bool CountNonFinite { get; init; }
    /// <summary>
    /// Let a GGUF input whose tensors are already quantized be quantized again to a different type (llama.cpp's
    /// --allow-requantize): the second rounding adds to the first, so the result is worse than quantizing the
    /// original weights. Without it such an input is refused before anything is written.
    /// </summary>
    public bool AllowRequantize { get; init; }
    /// <summary>A plan made elsewhere (a bit budget); null: the preset's rules.</summary>
    public QuantizationPlan? Plan { get; init; }
    /// <summary>Rounding other than the codecs' plain one (GPTQ); tensors it returns nothing for are rounded plainly.</summary>
    internal Quantization.Gptq.ITensorRounding? Rounding { get; init; }
    /// <summary>How weights were rounded, recorded by name as general.quantization.method.</summary>
    public RoundingMethod Method { get; init; } = RoundingMethod.Rtn;
    /// <summary>Extra lines recorded under general.quantization.plan (a bit budget's target and per-tensor costs).</summary>
    public IReadOnlyList<string> PlanNotes { get; init; } = [];
}

/// <summary>
/// What an export wrote. <see cref="Warnings"/> holds the NaN/Inf findings when they were counted;
/// <see cref="Requantized"/> names the tensors of a quantized GGUF input that were quantized again ("name: FROM -> TO").
/// </summary>
public sealed record GgufExportResult(string Path, QuantizationPlan Plan, long FileBytes, IReadOnlyList<string> Warnings, IReadOnlyList<string> Requantized);

/// <summary>
/// Writes a Hymba checkpoint as one GGUF v3 file: hymba.* metadata (HymbaGgufSchema), general.* provenance
/// (source file hashes, tool version, preset and the per-tensor policy), tokenizer ids, and the tensors of
/// the single-file layout, each converted or quantized row chunk by row chunk while it is written.
/// </summary>
public static class GgufExporter
{
    public static string ToolVersion => "HymbaTools " + (typeof(GgufExporter).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

    public static GgufExportResult Export(HymbaCheckpoint checkpoint, string outputPath, GgufExportOptions options, IProgress<(long Done, long Total)>? progress = null) =>
        Export(new CheckpointExportInput(checkpoint), outputPath, options, progress);

    /// <summary>Writes a GGUF file in another preset: float tensors are quantized, tensors already in their target type are copied as they are.</summary>
    public static GgufExportResult Export(GgufTensorSource gguf, string outputPath, GgufExportOptions options, IProgress<(long Done, long Total)>? progress = null) =>
        Export(new GgufFileExportInput(gguf), outputPath, options, progress);

    private static GgufExportResult Export(IGgufExportInput input, string outputPath, GgufExportOptions options, IProgress<(long Done, long Total)>? progress)
    {
        var nonFinite = options.CountNonFinite ? new NonFiniteTally() : null;
        var prepared = Prepare(input, options, nonFinite);
        prepared.Writer.Write(outputPath, progress);
        return new GgufExportResult(outputPath, prepared.Plan, new FileInfo(outputPath).Length, nonFinite?.Warnings() ?? [], prepared.Requantized);
    }

    /// <summary>Builds the complete writer (metadata, tensor infos, data callbacks) without writing anything: dry runs read its size.</summary>
    internal static (GgufWriter Writer, QuantizationPlan Plan) Prepare(HymbaCheckpoint checkpoint, GgufExportOptions options)
    {
        var prepared = Prepare(new CheckpointExportInput(checkpoint), options, null);
        return (prepared.Writer, prepared.Plan);
    }

    /// <inheritdoc cref="Prepare(HymbaCheckpoint, GgufExportOptions)"/>
    internal static (GgufWriter Writer, QuantizationPlan Plan) Prepare(GgufTensorSource gguf, GgufExportOptions options)
    {
        var prepared = Prepare(new GgufFileExportInput(gguf), options, null);
        return (prepared.Writer, prepared.Plan);
    }

    private sealed record Prepared(GgufWriter Writer, QuantizationPlan Plan, IReadOnlyList<string> Requantized);

    private static bool IsFloat(GgmlType type) => RequantizeRule.IsFloat(type);

    private static Prepared Prepare(IGgufExportInput input, GgufExportOptions options, NonFiniteTally? nonFinite)
    {
        var config = input.Config;
        var plan = options.Plan ?? QuantizationPlan.Create(config, options.Preset, options.Overrides);
        // How each tensor gets its bytes: copied when the input already holds it in the planned type, else
        // converted; quantizing already-quantized data again is refused unless asked for.
        var requantized = plan.Tensors
            .Select(p => (Planned: p, Stored: input.StoredType(p.Tensor)))
            .Where(t => t.Stored is { } stored && stored != t.Planned.Type && !IsFloat(stored))
            .Select(t => $"{t.Planned.Tensor.Name}: {GgmlTypes.NameOf(t.Stored!.Value)} -> {GgmlTypes.NameOf(t.Planned.Type)}").ToList();
        RequantizeRule.Check(requantized, options.AllowRequantize);
        var writer = new GgufWriter();
        writer.Add(GgufConstants.ArchitectureKey, GgufValue.Str(HymbaGgufSchema.Architecture));
        writer.Add("general.name", GgufValue.Str(options.ModelName ?? input.DefaultModelName));
        writer.Add(GgufConstants.AlignmentKey, GgufValue.U32(GgufConstants.DefaultAlignment));
        writer.Add("general.file_type", GgufValue.U32(options.Preset.FileType));
        if (plan.Tensors.Any(t => !IsFloat(t.Type)))
            writer.Add(GgufConstants.QuantizationVersionKey, GgufValue.U32(GgufConstants.QuantizationVersion));
        writer.Add("general.tool_version", GgufValue.Str(ToolVersion));
        writer.Add("general.quantization.preset", GgufValue.Str(options.Preset.Name));
        writer.Add("general.quantization.tensor_types", GgufValue.Strings(plan.Tensors.Select(t => $"{t.Tensor.Name}={GgmlTypes.NameOf(t.Type)}")));
        // Plain preset files keep exactly the keys they always had; a budget plan or another rounding says so.
        if (options.Method != RoundingMethod.Rtn || options.PlanNotes.Count > 0)
            writer.Add("general.quantization.method", GgufValue.Str(RoundingMethods.NameOf(options.Method)));
        if (options.PlanNotes.Count > 0)
            writer.Add("general.quantization.plan", GgufValue.Strings(options.PlanNotes));
        if (options.Overrides.Count > 0)
            writer.Add("general.quantization.overrides", GgufValue.Strings(options.Overrides.Select(o => $"{o.Pattern}={GgmlTypes.NameOf(o.Type)}")));
        if (requantized.Count > 0)
            writer.Add("general.quantization.requantized", GgufValue.Strings(requantized));
        if (options.Importance is { } imatrix)
        {
            writer.Add("quantize.imatrix.dataset", GgufValue.Str(imatrix.Dataset));
            writer.Add("quantize.imatrix.entries_count", GgufValue.I32(imatrix.Entries.Count));
            writer.Add("quantize.imatrix.chunks_count", GgufValue.I32(imatrix.Chunks));
        }
        if (input.Hub is { } hub)
        {
            writer.Add(GgufConstants.SourceHubRepositoryKey, GgufValue.Str(hub.RepoId));
            writer.Add(GgufConstants.SourceHubRevisionKey, GgufValue.Str(hub.Commit));
        }
        var sources = input.ProvenanceFiles;
        writer.Add("general.source.file_names", GgufValue.Strings(sources.Select(s => System.IO.Path.GetFileName(s))));
        if (options.HashSources)
        {
            // Hashing the sources (~1.7 s of a core per 3 GB unless remembered) runs beside the quantizer and is patched in after the data.
            var hashing = Task.Run(() => sources.Select(FileSha256.Of).ToArray());
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
        input.AddTokenizer(writer);

        foreach (var p in plan.Tensors)
        {
            var t = p.Tensor;
            int cols = checked((int)t.Columns);
            var importance = options.Importance?.For(t.Name, cols);
            // The source tensor is looked up when its data is written, so a dry run works on config.json alone.
            writer.AddTensor(new GgufTensorEntry(t.Name, t.Shape.Reverse().ToArray(), p.Type, stream =>
            {
                if (options.Rounding?.TryRound(t) is { } rounded)
                {
                    stream.Write(rounded);
                }
                else if (input.StoredType(t) != p.Type || !input.TryCopyStoredBytes(t, stream))
                {
                    var counter = nonFinite?.Counter(input.Location(t));
                    var rows = input.Rows(t);
                    RowSource source = counter is null ? rows : (first, count, dst) =>
                    {
                        rows(first, count, dst);
                        counter.Add(dst[..(count * cols)]);
                    };
                    TensorQuantizer.Quantize(p.Type, t.Rows, cols, source, importance, stream, options.Threads);
                }
                input.Release(t);   // streamed: resident memory stays bounded by the tensor in flight
            }));
        }
        writer.AddTensorChecksums();
        return new Prepared(writer, plan, requantized);
    }

    /// <summary>
    /// NaN/Inf counts per source tensor, gathered while rows are converted; the row blocks of a split tensor
    /// (in_proj) share a location and add into one count. Each source row is written once in a GGUF (a tied
    /// head is not stored), so nothing is counted twice.
    /// </summary>
    private sealed class NonFiniteTally
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RowCounter> _counts = new(StringComparer.Ordinal);

        public RowCounter Counter(string location) => _counts.GetOrAdd(location, _ => new RowCounter());

        /// <summary>One warning per affected tensor, in location order, worded as the checkpoint reader's scan words them.</summary>
        public List<string> Warnings() =>
            _counts.Where(c => c.Value.Count > 0)
                .OrderBy(c => c.Key, StringComparer.Ordinal)
                .Select(c => $"{c.Key}: {HymbaCheckpoint.NonFiniteMessage(c.Value.Count)}")
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
