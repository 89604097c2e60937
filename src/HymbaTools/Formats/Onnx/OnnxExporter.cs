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

/// <summary>Which operators an export's graph is built from (<c>hymba export --ops</c>).</summary>
public enum OnnxOps
{
    /// <summary>ONNX Runtime's fused CPU contrib ops (com.microsoft, and its own ops in the ONNX domain): the fastest graph in ONNX Runtime, which alone loads it.</summary>
    OnnxRuntime,
    /// <summary>Only ONNX-domain operators of the chosen opset (blockwise DequantizeLinear + MatMul for N-bit weights): any conforming runtime.</summary>
    Standard,
}

public sealed record OnnxExportOptions
{
    public OnnxExportType Type { get; init; } = OnnxExportType.F32;
    /// <summary>MatMulNBits block size (int8/int4).</summary>
    public int BlockSize { get; init; } = 32;
    /// <summary>Default-domain opset, 17 to 21 (ONNX Runtime's ops; they set the runtime floor, ONNX Runtime 1.31) or to 23 (standard ops; N-bit weights from 21).</summary>
    public long Opset { get; init; } = 17;
    /// <summary>Which operators the graph is built from: ONNX Runtime's fused contrib ops (the fastest graph there) or only ONNX-domain ops of <see cref="Opset"/>.</summary>
    public OnnxOps Ops { get; init; } = OnnxOps.OnnxRuntime;
    /// <summary>
    /// MatMulNBits accuracy_level: 4 (default) quantizes activations to int8 inside the kernel, 3x faster
    /// decode here for int4; 0 computes in float32 (int8 exports then match GGUF q8_0's KL, see README).
    /// </summary>
    public int AccuracyLevel { get; init; } = 4;
    /// <summary>Element type of the K/V cache (conv and SSM state are float32 either way): see <see cref="HymbaStateLayout"/>.</summary>
    public OnnxStateType StateType { get; init; } = OnnxStateType.F16;
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
        long highest = options.Ops == OnnxOps.Standard ? 23 : 21, lowest = HymbaOnnxGraph.MinimumOpset(options.Ops, options.Type);
        if (options.Opset < lowest || options.Opset > highest)
            throw new InvalidRequestException("--opset", $"{options.Opset} is not supported with --ops {OpsName(options.Ops)} --type {options.Type.ToString().ToLowerInvariant()} (expected {lowest} to {highest}" +
                (lowest > 17 ? "; N-bit weights need blocked DequantizeLinear and int4, opset 21)" : ")"));
        if (!MatMulNBitsPacker.SupportedBlockSizes.Contains(options.BlockSize))
            throw new InvalidRequestException("--block-size", $"{options.BlockSize} is not supported (expected {string.Join(", ", MatMulNBitsPacker.SupportedBlockSizes)})");
        if (config.ConvKernel < 2) throw new InvalidConfigException(config.SourcePath, "$.mamba_d_conv", $"{config.ConvKernel} is not supported by the ONNX export (expected at least 2)", unsupported: true);
        string destination = OutputPaths.CheckDirectory(outputDirectory, "-o", options.Force);

        var tokenizer = OnnxExportTokenizer.Prepare(source);
        var weights = OnnxPrecision.Plan(config, options.Type, options.BudgetBits);
        long weightBytes = weights.Sum(w => w.Bytes(options.BlockSize));
        bool external = weightBytes > Math.Min(options.ExternalDataThreshold, ProtobufLimit - (64L << 20));
        var graph = HymbaOnnxGraph.Build(config, weights, new HymbaGraphOptions(options.Opset, options.BlockSize, options.AccuracyLevel, options.Ops, options.StateType));
        var state = new HymbaStateLayout(config, options.StateType);
        // The meta tokens' state first (one pass over the layers), reported as the first half of the work.
        var metaState = MetaTokenState.Compute(source.Tensors, ProgressPart.Of(progress, 0, 2, weightBytes));
        long modelBytes = 0, dataBytes = 0;
        OutputPaths.WriteDirectory(destination, options.Force, directory =>
        {
            string checksums;
            using (var store = new OnnxInitializerStore(external ? Path.Combine(directory, HymbaOnnxNames.DataFile) : null))
            using (var walk = options.GptqCalibration is { } chunks ? GptqWalk(source.Tensors, chunks, weights, options.BlockSize, options.GptqLog) : null)
            {
                new OnnxWeightWriter(source.Tensors, weights, options.BlockSize, options.Ops, walk).WriteAll(store, ProgressPart.Of(progress, 1, 2, weightBytes), weightBytes);
                WriteMetaTokenState(metaState, store);
                store.Complete();
                graph.Initializer.AddRange(store.Tensors);
                checksums = string.Join("\n", store.Checksums.Select(c => $"{c.Name} {c.Digest}"));
            }
            var model = new ModelProto
            {
                IrVersion = IrVersionOf(options.Opset),
                ProducerName = "HymbaTools",
                ProducerVersion = Gguf.GgufExporter.ToolVersion,
                Graph = graph,
                DocString = "Hymba decoder with decoding state: see README.md in this directory.",
            };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
            // ONNX Runtime's contrib ops (fused norms, RoPE, conv with state, MatMulNBits); a standard graph has none.
            if (options.Ops == OnnxOps.OnnxRuntime)
                model.OpsetImport.Add(new OperatorSetIdProto { Domain = OnnxConstants.MicrosoftDomain, Version = OnnxConstants.MicrosoftOpset });
            foreach (var (key, value) in Metadata(source, options))
                model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
            model.MetadataProps.Add(new StringStringEntryProto { Key = HymbaOnnxNames.MetaTensorChecksums, Value = checksums });
            WriteFile(Path.Combine(directory, HymbaOnnxNames.ModelFile), model.ToByteArray());

            WriteFile(Path.Combine(directory, "config.json"), Json(config.Json));
            WriteFile(Path.Combine(directory, HymbaOnnxNames.GenAiConfigFile), Json(GenAiConfig.Create(state, source.GenerationConfig)));
            WriteFile(Path.Combine(directory, HymbaOnnxNames.ExportInfoFile), Json(ExportInfo.Create(state, options)));
            tokenizer.Write(directory, WriteFile);
            WriteFile(Path.Combine(directory, "README.md"), Encoding.UTF8.GetBytes(OnnxExportReadme.Create(state, options, weights)));
            modelBytes = new FileInfo(Path.Combine(directory, HymbaOnnxNames.ModelFile)).Length;
            dataBytes = external ? new FileInfo(Path.Combine(directory, HymbaOnnxNames.DataFile)).Length : 0;
        });
        return new OnnxExportResult(destination, weights, modelBytes, dataBytes, external);
    }

    /// <summary>The `--ops` spelling of an op set.</summary>
    public static string OpsName(OnnxOps ops) => ops == OnnxOps.Standard ? "standard" : "ort";

    /// <summary>The IR version ONNX released with each opset (17-18: 8, 19-20: 9, 21-22: 10, 23: 11).</summary>
    private static long IrVersionOf(long opset) => opset switch { <= 18 => 8, <= 20 => 9, <= 22 => 10, _ => 11 };

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
        yield return (HymbaOnnxNames.MetaStateType, options.StateType.ToString().ToLowerInvariant());
        yield return ("hymba.export.ops", OpsName(options.Ops));
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
}
