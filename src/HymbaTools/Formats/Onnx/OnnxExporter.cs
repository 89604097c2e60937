using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using HymbaTools.Common;
using HymbaTools.Formats.Onnx.Protos;
using HymbaTools.Model;
using HymbaTools.Quantization.Gptq;
using HymbaTools.Quantization.Onnx;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

public sealed record OnnxExportOptions
{
    public OnnxExportType Type { get; init; } = OnnxExportType.F32;
    /// <summary>MatMulNBits block size (int8/int4).</summary>
    public int BlockSize { get; init; } = 32;
    /// <summary>Default-domain opset: 17 passes the onnx 1.12 checker; the contrib ops (com.microsoft) set the runtime floor, ONNX Runtime 1.31.</summary>
    public long Opset { get; init; } = 17;
    /// <summary>
    /// MatMulNBits accuracy_level: 4 (default) quantizes activations to int8 inside the kernel, 3x faster
    /// decode here for int4; 0 computes in float32 (int8 exports then match GGUF q8_0's KL, see README).
    /// </summary>
    public int AccuracyLevel { get; init; } = 4;
    /// <summary>Weights go to model.onnx.data when their total exceeds this; always beyond 2 GiB (the protobuf limit).</summary>
    public long ExternalDataThreshold { get; init; } = 512L << 20;
    /// <summary>Replace a non-empty output directory.</summary>
    public bool Force { get; init; }
    /// <summary>
    /// Calibration chunks for error-compensated (GPTQ) rounding of the MatMulNBits blocks; null: round to nearest
    /// (MLAS's rule). Recorded as hymba.export.method and hymba.export.calibration.
    /// </summary>
    public long[][]? GptqCalibration { get; init; }
    /// <summary>What the calibration chunks came from (recorded in the metadata).</summary>
    public string CalibrationSource { get; init; } = "";
    /// <summary>MatMulNBits bits per weight chosen by a bit budget (<see cref="OnnxBitBudget"/>); null: the int4/int8 policy's.</summary>
    public IReadOnlyDictionary<string, int>? BudgetBits { get; init; }
    /// <summary>The budget's target, costs and choices, recorded under <see cref="OnnxBitBudget.MetadataKey"/>.</summary>
    public IReadOnlyList<string> PlanNotes { get; init; } = [];
    /// <summary>Receives one line per layer of the GPTQ walk (its step times).</summary>
    public Action<string>? GptqLog { get; init; }
}

/// <summary>What an export reads: tensors by HuggingFace name, the files to record hashes of, and where tokenizer files are.</summary>
/// <param name="Path">the checkpoint directory or GGUF file, recorded so `verify` can compare the export with it</param>
public sealed record OnnxExportSource(IHymbaTensorSource Tensors, IReadOnlyList<string> Files, string? TokenizerDirectory, string Path)
{
    /// <summary>Tokenizer files to write when there is no directory to copy them from (a GGUF file's tokenizer.ggml.* keys).</summary>
    public Text.TokenizerFiles? Tokenizer { get; init; }

    /// <summary>Special token ids and search defaults for genai_config.json (a checkpoint's generation_config.json).</summary>
    public GenerationConfig GenerationConfig { get; init; } = new();
}

public sealed record OnnxExportResult(string Directory, IReadOnlyList<OnnxWeight> Weights, long ModelBytes, long DataBytes, bool ExternalData);

/// <summary>
/// Writes an ONNX Runtime model directory for a Hymba model: model.onnx (+ model.onnx.data), config.json (the
/// HuggingFace config, so the directory describes itself), genai_config.json, the tokenizer files and a README.
/// Everything is written into a temporary directory beside the destination and renamed into place when
/// complete; tensors are converted one at a time, so memory is bounded by the largest tensor.
/// </summary>
public static class OnnxExporter
{
    public const long ProtobufLimit = (2L << 30) - 1;

    public static OnnxExportResult Export(OnnxExportSource source, string outputDirectory, OnnxExportOptions options, IProgress<(long Done, long Total)>? progress = null)
    {
        var config = source.Tensors.Config;
        if (options.Opset is < 17 or > 21) throw new InvalidRequestException("--opset", $"{options.Opset} is not supported (expected 17 to 21)");
        if (!MatMulNBitsPacker.SupportedBlockSizes.Contains(options.BlockSize))
            throw new InvalidRequestException("--block-size", $"{options.BlockSize} is not supported (expected {string.Join(", ", MatMulNBitsPacker.SupportedBlockSizes)})");
        if (config.ConvKernel < 2) throw new InvalidConfigException(config.SourcePath, "$.mamba_d_conv", $"{config.ConvKernel} is not supported by the ONNX export (expected at least 2)", unsupported: true);
        string destination = OutputPaths.CheckDirectory(outputDirectory, "-o", options.Force);

        var tokenizer = OnnxExportTokenizer.Prepare(source);
        var weights = OnnxPrecision.Plan(config, options.Type, options.BudgetBits);
        long weightBytes = weights.Sum(w => w.Bytes(options.BlockSize));
        bool external = weightBytes > Math.Min(options.ExternalDataThreshold, ProtobufLimit - (64L << 20));
        var graph = HymbaOnnxGraph.Build(config, weights, new HymbaGraphOptions(options.Opset, options.BlockSize, options.AccuracyLevel));
        // The meta tokens' state first (one pass over the layers), reported as the first half of the work.
        var metaState = MetaTokenState.Compute(source.Tensors, ProgressPart.Of(progress, 0, 2, weightBytes));
        long modelBytes = 0, dataBytes = 0;
        OutputPaths.WriteDirectory(destination, options.Force, directory =>
        {
            string checksums;
            using (var store = new OnnxInitializerStore(external ? Path.Combine(directory, HymbaOnnxNames.DataFile) : null))
            using (var walk = options.GptqCalibration is { } chunks ? GptqWalk(source.Tensors, chunks, weights, options.BlockSize, options.GptqLog) : null)
            {
                WriteWeights(source.Tensors, weights, options.BlockSize, store, ProgressPart.Of(progress, 1, 2, weightBytes), weightBytes, walk);
                WriteMetaTokenState(metaState, store);
                store.Complete();
                graph.Initializer.AddRange(store.Tensors);
                checksums = string.Join("\n", store.Checksums.Select(c => $"{c.Name} {c.Digest}"));
            }
            var model = new ModelProto
            {
                IrVersion = options.Opset >= 21 ? 10 : 8,
                ProducerName = "HymbaTools",
                ProducerVersion = Gguf.GgufExporter.ToolVersion,
                Graph = graph,
                DocString = "Hymba decoder with decoding state: see README.md in this directory.",
            };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
            // ONNX Runtime's contrib ops (fused norms, RoPE, conv with state, linear attention, MatMulNBits).
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = OnnxConstants.MicrosoftDomain, Version = OnnxConstants.MicrosoftOpset });
            foreach (var (key, value) in Metadata(source, options))
                model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
            model.MetadataProps.Add(new StringStringEntryProto { Key = HymbaOnnxNames.MetaTensorChecksums, Value = checksums });
            WriteFile(Path.Combine(directory, HymbaOnnxNames.ModelFile), model.ToByteArray());

            WriteFile(Path.Combine(directory, "config.json"), Json(config.Json));
            WriteFile(Path.Combine(directory, HymbaOnnxNames.GenAiConfigFile), Json(GenAiConfig.Create(config, source.GenerationConfig)));
            WriteFile(Path.Combine(directory, HymbaOnnxNames.ExportInfoFile), Json(ExportInfo.Create(config, options)));
            tokenizer.Write(directory, WriteFile);
            WriteFile(Path.Combine(directory, "README.md"), Encoding.UTF8.GetBytes(OnnxExportReadme.Create(config, options, weights)));
            modelBytes = new FileInfo(Path.Combine(directory, HymbaOnnxNames.ModelFile)).Length;
            dataBytes = external ? new FileInfo(Path.Combine(directory, HymbaOnnxNames.DataFile)).Length : 0;
        });
        return new OnnxExportResult(destination, weights, modelBytes, dataBytes, external);
    }

    /// <summary>GPTQ over the layers for every MatMulNBits weight whose rows are whole blocks (the rest round to nearest).</summary>
    private static GptqLayerWalk GptqWalk(IHymbaTensorSource source, long[][] chunks, IReadOnlyList<OnnxWeight> weights, int blockSize, Action<string>? log)
    {
        var byName = weights.ToDictionary(w => w.Tensor.Name, StringComparer.Ordinal);
        return new GptqLayerWalk(source, chunks, t => byName.TryGetValue(t.Name, out var w) && w.Kind == OnnxWeightKind.NBits && t.Columns % blockSize == 0
            ? new MatMulNBitsGrid(w.Bits, blockSize) : null, importance: null) { CalibrationImportance = true, Log = log };
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private static byte[] Json(System.Text.Json.Nodes.JsonNode node) => Encoding.UTF8.GetBytes(node.ToJsonString(Indented) + "\n");

    private static void WriteFile(string path, byte[] bytes)
    {
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        stream.Write(bytes);
        stream.Flush(flushToDisk: true);
    }

    private static IEnumerable<(string Key, string Value)> Metadata(OnnxExportSource source, OnnxExportOptions options)
    {
        yield return (HymbaOnnxNames.MetaToolVersion, Gguf.GgufExporter.ToolVersion);
        yield return (HymbaOnnxNames.MetaType, options.Type.ToString().ToLowerInvariant());
        yield return (HymbaOnnxNames.MetaPreset, OnnxPrecision.PresetOf(options.Type));
        yield return (HymbaOnnxNames.MetaBlockSize, options.BlockSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        yield return (HymbaOnnxNames.MetaAccuracyLevel, options.AccuracyLevel.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (options.GptqCalibration is not null)
        {
            yield return (HymbaOnnxNames.MetaMethod, Quantization.RoundingMethods.NameOf(Quantization.RoundingMethod.Gptq));
            yield return (HymbaOnnxNames.MetaCalibration, options.CalibrationSource);
        }
        if (options.PlanNotes.Count > 0) yield return (OnnxBitBudget.MetadataKey, string.Join("\n", options.PlanNotes));
        yield return (HymbaOnnxNames.MetaSourcePath, System.IO.Path.GetFullPath(source.Path));
        string sourceDirectory = Directory.Exists(source.Path) ? source.Path : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(source.Path))!;
        if (Checkpoints.HubSnapshot.FromDirectory(sourceDirectory) is { } hub)
        {
            yield return (HymbaOnnxNames.MetaSourceHubRepository, hub.RepoId);
            yield return (HymbaOnnxNames.MetaSourceHubRevision, hub.Commit);
        }
        yield return (HymbaOnnxNames.MetaSourceSha256, string.Join("\n", source.Files.Select(f => $"{System.IO.Path.GetFileName(f)} {HymbaTools.Common.FileSha256.Of(f)}")));
    }

    /// <summary>
    /// The meta tokens' state as float32 initializers (the meta tokens themselves are float32 in every precision
    /// policy, and so is what they produce): per KV owner the keys [H_kv, M, d_h] and the values [H_kv, M, d_v]; per layer the conv inputs [1, d_in, k-1] and the SSM state [1, d_in, N].
    /// </summary>
    private static void WriteMetaTokenState(MetaTokenState state, OnnxInitializerStore store)
    {
        var c = state.Config;
        if (c.NumMemoryTokens == 0) return;
        int m = c.NumMemoryTokens, heads = c.NumKvHeads;
        foreach (var (layer, kv) in state.KeyValues.OrderBy(e => e.Key))
        {
            store.Add(HymbaOnnxNames.MetaKeys(layer), [heads, m, c.HeadDim], DataType.Float, MemoryMarshal.AsBytes(kv.Keys.AsSpan()));
            store.Add(HymbaOnnxNames.MetaValues(layer), [heads, m, c.VHeadDim], DataType.Float, MemoryMarshal.AsBytes(kv.Values.AsSpan()));
        }
        foreach (var plan in c.Layers)
        {
            store.Add(HymbaOnnxNames.MetaConv(plan.Index), [1, c.DInner, c.ConvKernel - 1], DataType.Float, MemoryMarshal.AsBytes(state.ConvStates[plan.Index].AsSpan()));
            store.Add(HymbaOnnxNames.MetaSsm(plan.Index), [1, c.DInner, c.SsmStateSize], DataType.Float, MemoryMarshal.AsBytes(state.SsmStates[plan.Index].AsSpan()));
        }
    }

    /// <summary>
    /// Converts every initializer in layout order, a fused one member by member into one buffer (members are rows of
    /// the same width; MatMulNBits packs each row on its own, so packed members concatenate). A source tensor is read
    /// once for all the stored tensors taken from it (in_proj's row blocks).
    /// </summary>
    private static void WriteWeights(IHymbaTensorSource source, IReadOnlyList<OnnxWeight> weights, int blockSize, OnnxInitializerStore store,
        IProgress<(long Done, long Total)>? progress, long totalBytes, GptqLayerWalk? walk)
    {
        string? cachedName = null;
        float[] cached = [];
        long done = 0;
        ReadOnlySpan<float> ValuesOf(StoredTensor t)
        {
            if (cachedName != t.SourceName)
            {
                long count = source.ShapeOf(t.SourceName).Aggregate(1L, (a, b) => checked(a * b));
                cached = new float[count];
                source.CopyToFloat32(t.SourceName, cached);
                cachedName = t.SourceName;
            }
            int columns = checked((int)t.Columns);
            return cached.AsSpan(checked((t.SourceRows?.Start ?? 0) * columns), checked((int)t.Rows * columns));
        }
        foreach (var initializer in OnnxInitializers.Plan(weights))
        {
            Interruption.ThrowIfRequested();
            done += initializer.Members.Sum(w => w.Bytes(blockSize));
            if (!initializer.IsFused && initializer.Kind == OnnxWeightKind.Float32)
            {
                // The common case of a float export written straight from the source values, without a copy.
                store.Add(initializer.Name, initializer.Shape, DataType.Float, MemoryMarshal.AsBytes(ValuesOf(initializer.First.Tensor)));
                progress?.Report((done, totalBytes));
                continue;
            }
            var parts = initializer.Members.Select(w => walk?.TryRound(w.Tensor) is { } rounded
                ? Split(rounded, w, blockSize)
                : Convert(ValuesOf(w.Tensor), w, blockSize)).ToList();
            if (initializer.Kind == OnnxWeightKind.NBits)
            {
                var blocks = parts.SelectMany(p => p.Bytes).ToArray();
                var scales = parts.SelectMany(p => p.Scales!).ToArray();
                long perRow = blocks.Length / initializer.Rows;
                store.Add(HymbaOnnxGraph.BlocksName(initializer.Name), [initializer.Rows, perRow / (blockSize * initializer.Bits / 8), blockSize * initializer.Bits / 8], DataType.Uint8, blocks);
                store.Add(HymbaOnnxGraph.ScalesName(initializer.Name), [scales.Length], DataType.Float, MemoryMarshal.AsBytes(scales.AsSpan()));
            }
            else
            {
                var bytes = parts.Count == 1 ? parts[0].Bytes : parts.SelectMany(p => p.Bytes).ToArray();
                store.Add(initializer.Name, initializer.Shape, initializer.Kind == OnnxWeightKind.Float16 ? DataType.Float16 : DataType.Float, bytes);
            }
            progress?.Report((done, totalBytes));
        }
    }

    /// <summary>GPTQ-rounded rows of a MatMulNBits weight, as the operator's blocks and scales.</summary>
    private static (byte[] Bytes, float[]? Scales) Split(byte[] rows, OnnxWeight w, int blockSize)
    {
        var (b, scales) = new MatMulNBitsGrid(w.Bits, blockSize).Split(rows, checked((int)w.Tensor.Rows), checked((int)w.Tensor.Columns));
        return (b, scales);
    }

    /// <summary>One stored tensor in its ONNX representation: float32 or float16 bytes, or MatMulNBits blocks and scales.</summary>
    private static (byte[] Bytes, float[]? Scales) Convert(ReadOnlySpan<float> values, OnnxWeight w, int blockSize)
    {
        switch (w.Kind)
        {
            case OnnxWeightKind.Float32:
                return (MemoryMarshal.AsBytes(values).ToArray(), null);
            case OnnxWeightKind.Float16:
                var half = new Half[values.Length];
                for (int i = 0; i < values.Length; i++) half[i] = (Half)values[i];
                return (MemoryMarshal.AsBytes(half.AsSpan()).ToArray(), null);
            default:
                var packed = MatMulNBitsPacker.Quantize(values, checked((int)w.Tensor.Rows), checked((int)w.Tensor.Columns), w.Bits, blockSize, symmetric: true);
                return (packed.B, packed.Scales);
        }
    }
}
