using System.CommandLine;
using HymbaTools.Common;
using HymbaTools.Formats.Onnx;

namespace HymbaTools.Cli.Commands;

internal static class ExportCommand
{
    private static readonly Dictionary<string, OnnxExportType> Types = new(StringComparer.OrdinalIgnoreCase)
    {
        ["f32"] = OnnxExportType.F32,
        ["f16"] = OnnxExportType.F16,
        ["int8"] = OnnxExportType.Int8,
        ["int4"] = OnnxExportType.Int4,
    };

    private static readonly Dictionary<string, OnnxStateType> StateTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["f16"] = OnnxStateType.F16,
        ["f32"] = OnnxStateType.F32,
    };

    /// <summary>The K/V element type named by --state-dtype (export and bench onnx).</summary>
    public static OnnxStateType ParseStateType(string name) =>
        StateTypes.TryGetValue(name, out var type) ? type : throw new InvalidRequestException("--state-dtype", $"'{name}' (expected f16 or f32)");

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var source = new Argument<string>("source") { Description = "HuggingFace checkpoint directory or .gguf file" + CheckpointInput.HubHelp };
        var format = new Option<string>("--format") { Description = "Output format: onnx (a directory for ONNX Runtime; for GGUF use `hymba quantize`)", DefaultValueFactory = _ => "onnx" };
        var type = new Option<string>("--type")
        {
            Description = "Weights: f32; f16 (float16 storage); int8 / int4 (com.microsoft.MatMulNBits, 8 or 4 bits, for the linear weights the GGUF policy quantizes; norms, SSM parameters, conv kernel and meta tokens stay float32; x_proj/dt_proj and the embedding/head 8 bits)",
            DefaultValueFactory = _ => "f32",
        };
        var blockSize = new Option<int>("--block-size") { Description = "MatMulNBits block size for int8/int4 (16, 32, 64 or 128)", DefaultValueFactory = _ => 32 };
        var opset = new Option<long?>("--opset") { Description = "Default-domain opset: 17 to 21 with --ops ort (default 17), 17 to 23 with --ops standard (default 17 for f32/f16, 21 for int8/int4: blocked DequantizeLinear; 23 uses ONNX's RMSNormalization and RotaryEmbedding)" };
        var ops = new Option<string>("--ops")
        {
            Description = "Operators: ort (default) = ONNX Runtime's fused contrib ops, the fastest graph there, loaded by ONNX Runtime (and onnxruntime-genai) only; standard = only ONNX-domain ops of --opset, for any ONNX runtime (passes onnx.checker's full check)",
            DefaultValueFactory = _ => "ort",
        };
        var accuracy = new Option<int>("--accuracy-level") { Description = "MatMulNBits accuracy_level for int8/int4: 4 = int8 activations (about 3x faster int4 decode), 0 = float32 compute (int8 then matches GGUF q8_0's accuracy)", DefaultValueFactory = _ => 4 };
        var stateType = new Option<string>("--state-dtype")
        {
            Description = "Element type of the K/V cache the graph takes and returns: f16 (half the bytes; the graph computes in float32) or f32. Conv and SSM state are float32 either way",
            DefaultValueFactory = _ => "f16",
        };
        var threshold = new Option<long>("--external-data-threshold") { Description = "Weights larger than this many bytes in total go to model.onnx.data (always above 2 GB)", DefaultValueFactory = _ => 512L << 20 };
        var allowRequantize = new Option<bool>("--allow-requantize") { Description = "Export a GGUF input whose tensors are quantized already (as `quantize`: a second rounding on top of the first; export the original checkpoint instead)" };
        var calibration = new Option<string?>("--calibration") { Description = "Calibration text for --method gptq and --target-bpw (encoded with the source's tokenizer); never the text you evaluate on" };
        var targetBpw = new Option<double?>("--target-bpw") { Description = "With --type int4: give each MatMulNBits weight 4 or 8 bits by its measured cost on --calibration so that the weights stay at or under B bits per weight (the export prints the plan; `hymba export ... --type int4` alone is the 4-bit floor)" };
        var cost = new Option<string?>("--cost") { Description = "How --target-bpw measures a weight's cost: kl (output KL, one forward per weight and bit width) or layer (squared error of its layer's output). Default: kl up to 50M parameters, else layer" };
        var method = new Option<string>("--method") { Description = "Rounding of int4/int8 MatMulNBits blocks: rtn (round to nearest, MLAS's rule) or gptq (error-compensated with the calibration text's input Hessians)", DefaultValueFactory = _ => "rtn" };
        var chunk = new Option<int>("--chunk") { Description = "Calibration tokens per sequence (--method gptq)", DefaultValueFactory = _ => 256 };
        var chunks = new Option<int>("--chunks") { Description = "Most calibration sequences (--method gptq)", DefaultValueFactory = _ => 8 };
        var force = new Option<bool>("--force") { Description = "Replace a non-empty output directory" };
        var output = new Option<string>("--output", "-o") { Description = "Output directory (created; must not exist or be empty)", Required = true };
        var command = new Command("export",
            "Export a model for a runtime: --format onnx writes model.onnx (+ model.onnx.data), genai_config.json, config.json, the tokenizer files and a README into a directory. " +
            "One graph serves prefill and decode, with K/V, conv and SSM state as inputs and outputs.")
        {
            source, format, type, ops, blockSize, opset, accuracy, stateType, threshold, allowRequantize, calibration, method, targetBpw, cost, chunk, chunks, force, output,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            string formatName = parse.GetValue(format)!;
            if (!string.Equals(formatName, "onnx", StringComparison.OrdinalIgnoreCase))
                throw new InvalidRequestException("--format", $"'{formatName}' is not supported (expected onnx; GGUF files are written by `hymba quantize`)");
            string typeName = parse.GetValue(type)!;
            if (!Types.TryGetValue(typeName, out var exportType))
                throw new InvalidRequestException("--type", $"'{typeName}' (expected one of {string.Join(", ", Types.Keys)})");
            var keyValueType = ParseStateType(parse.GetValue(stateType)!);
            int level = parse.GetValue(accuracy);
            if (level is not (0 or 1 or 2 or 3 or 4)) throw new InvalidRequestException("--accuracy-level", $"{level} (expected 0 to 4)");
            long limit = parse.GetValue(threshold);
            if (limit < 0) throw new InvalidRequestException("--external-data-threshold", $"{limit} (expected a non-negative byte count)");
            var rounding = HymbaTools.Quantization.RoundingMethods.Parse(parse.GetValue(method)!);
            bool gptq = rounding == HymbaTools.Quantization.RoundingMethod.Gptq;
            if (gptq && exportType is not (OnnxExportType.Int4 or OnnxExportType.Int8))
                throw new InvalidRequestException("--method", "gptq rounds MatMulNBits blocks: use it with --type int4 or int8");
            if (gptq && parse.GetValue(calibration) is null) throw new InvalidRequestException("--calibration", "--method gptq needs calibration text (its input Hessians come from it)");
            double? target = parse.GetValue(targetBpw);
            if (target is not null && exportType != OnnxExportType.Int4) throw new InvalidRequestException("--target-bpw", "chooses 4 or 8 bits per MatMulNBits weight: use it with --type int4");
            if (target is not null && parse.GetValue(calibration) is null) throw new InvalidRequestException("--calibration", "--target-bpw needs calibration text (the costs are measured on it)");
            var measure = parse.GetValue(cost) is { } costName ? HymbaTools.Quantization.BitBudget.CostMeasures.Parse(costName) : (HymbaTools.Quantization.BitBudget.CostMeasure?)null;
            if (measure is not null && target is null) throw new InvalidRequestException("--cost", "measures the costs of --target-bpw; give a budget");
            if (measure == HymbaTools.Quantization.BitBudget.CostMeasure.Proxy) throw new InvalidRequestException("--cost", "proxy measures ggml blocks (GGUF); use kl or layer");
            if (parse.GetValue(chunk) < 1) throw new InvalidRequestException("--chunk", $"{parse.GetValue(chunk)}, expected >= 1");
            if (parse.GetValue(chunks) < 1) throw new InvalidRequestException("--chunks", $"{parse.GetValue(chunks)}, expected >= 1");
            string opsName = parse.GetValue(ops)!.ToLowerInvariant();
            var opSet = opsName switch
            {
                "ort" => OnnxOps.OnnxRuntime,
                "standard" => OnnxOps.Standard,
                _ => throw new InvalidRequestException("--ops", $"'{opsName}' (expected ort or standard)"),
            };
            var options = new OnnxExportOptions
            {
                Type = exportType,
                Ops = opSet,
                BlockSize = parse.GetValue(blockSize),
                Opset = parse.GetValue(opset) ?? HymbaOnnxGraph.MinimumOpset(opSet, exportType),
                AccuracyLevel = level,
                StateType = keyValueType,
                ExternalDataThreshold = limit,
                Force = parse.GetValue(force),
            };
            string sourcePath = CheckpointInput.Resolve(parse.GetValue(source)!, stderr);
            var kind = ArtifactKinds.Require(sourcePath, "export", ArtifactKind.Checkpoint | ArtifactKind.Gguf);
            if (target is not null && kind != ArtifactKind.Checkpoint) throw new InvalidRequestException("--target-bpw", "needs a checkpoint directory (float weights to measure), not a GGUF file");
            using var input = ArtifactLoader.OpenExportSource(sourcePath, stderr, parse.GetValue(allowRequantize));
            long[][]? split = null;
            string calibrationSource = "";
            if (parse.GetValue(calibration) is { } text && (gptq || target is not null))
            {
                var (ids, name) = CalibrationText.Read(sourcePath, text, input.Source.Tensors.Config.VocabSize);
                split = HymbaTools.Quantization.Calibration.CalibrationChunks.Split(ids, parse.GetValue(chunk), parse.GetValue(chunks));
                calibrationSource = $"{name} ({split.Length} x {parse.GetValue(chunk)} tokens)";
            }
            if (gptq) options = options with { GptqCalibration = split, CalibrationSource = calibrationSource, GptqLog = line => CliOutput.Note(stderr, $"gptq {line}") };
            if (target is { } bpw)
            {
                OnnxBitBudget.ChoicesFor(input.Source.Tensors.Config, options.BlockSize).Budget(bpw);   // refused before any cost is measured
                using var ckpt = HymbaTools.Model.HymbaCheckpoint.Open(sourcePath, new HymbaTools.Model.CheckpointReadOptions { ScanNonFinite = false });
                OnnxBitBudget budget;
                var request = new HymbaTools.Quantization.BitBudget.BudgetCostRequest { Chunks = split, Method = rounding, Measure = measure };
                CliOutput.Note(stderr, $"measuring costs: {HymbaTools.Quantization.BitBudget.CostMeasures.Describe(HymbaTools.Quantization.BitBudget.BudgetCostMeasurement.MeasureOf(request, OnnxBitBudget.ChoicesFor(ckpt.Config, options.BlockSize).Parameters))}");
                using (var measuring = new ConsoleProgress(stderr, "measure costs"))
                {
                    budget = OnnxBitBudget.Create(ckpt, bpw, options.BlockSize, request, calibrationSource, measuring);
                    measuring.Complete();
                }
                stderr.WriteLine($"note: {budget.Summary()}");
                options = options with { BudgetBits = budget.Bits, PlanNotes = budget.MetadataLines() };
            }
            using var progress = new ConsoleProgress(stderr, $"export onnx {typeName}");
            var result = OnnxExporter.Export(input.Source, parse.GetValue(output)!, options, progress);
            progress.Complete();
            if (!File.Exists(Path.Combine(result.Directory, HymbaTools.Text.TokenizerFiles.ModelFile)))
                stderr.WriteLine("note: no tokenizer.model in the source; the export has no tokenizer files");
            stdout.WriteLine($"wrote {result.Directory}: {HymbaOnnxNames.ModelFile} {result.ModelBytes:N0} bytes" +
                             (result.ExternalData ? $" + {HymbaOnnxNames.DataFile} {result.DataBytes:N0} bytes" : "") +
                             $", {result.Weights.Count} weight tensors ({string.Join(", ", result.Weights.GroupBy(w => w.Kind == OnnxWeightKind.NBits ? $"{w.Bits}-bit" : w.Kind.ToString().ToLowerInvariant()).Select(g => $"{g.Count()} {g.Key}"))})");
            return ExitCodes.Success;
        }));
        return command;
    }
}
