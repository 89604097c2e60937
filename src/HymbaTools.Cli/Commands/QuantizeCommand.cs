using System.CommandLine;
using HymbaTools.Common;
using HymbaTools.Formats.Gguf;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Quantization.BitBudget;
using HymbaTools.Quantization.Gptq;
using HymbaTools.Quantization.Calibration;

namespace HymbaTools.Cli.Commands;

internal static class QuantizeCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("input") { Description = "HuggingFace checkpoint directory, or a .gguf file written by hymba (f32/f16/bf16; quantized ones need --allow-requantize)" + CheckpointInput.HubHelp };
        var type = new Option<string?>("--type") { Description = "Preset: " + string.Join("; ", QuantizationPreset.All.Select(p => $"{p.Name} ({p.Description})")) + " (this or --target-bpw)" };
        var targetBpw = new Option<double?>("--target-bpw") { Description = "Instead of a preset: choose each linear weight's type (Q4_0, IQ4_NL, Q4_1, Q5_0, Q5_1, Q8_0, F16; whatever fits its rows) by its measured cost so that the tensor data stays at or under B bits per weight" };
        var calibration = new Option<string?>("--calibration") { Description = "Calibration text (encoded with the checkpoint's tokenizer): the costs of --target-bpw and the Hessians of --method gptq are measured on it. Never the text you evaluate on" };
        var method = new Option<string>("--method") { Description = "Rounding: rtn (the codecs' own, byte-identical to ggml) or gptq (error-compensated column by column with the calibration text's input Hessians; ordinary blocks, different bytes)", DefaultValueFactory = _ => "rtn" };
        var cost = new Option<string?>("--cost") { Description = "How --target-bpw measures a tensor's cost: kl (the model's output KL on the calibration text, one forward per tensor and type), layer (the squared error of the tensor's layer output, one layer pass per tensor) or proxy (importance-weighted squared error, no pass). Default with --calibration: kl up to 50M parameters, else layer; with only --imatrix: proxy" };
        var chunk = new Option<int>("--chunk") { Description = "Calibration tokens per sequence", DefaultValueFactory = _ => 256 };
        var chunks = new Option<int>("--chunks") { Description = "Most calibration sequences", DefaultValueFactory = _ => 8 };
        var tensorType = new Option<string[]>("--tensor-type") { Description = "Override REGEX=TYPE on stored tensor names, e.g. 'ffn_down=Q8_0' (repeatable; later ones win)" };
        var imatrix = new Option<string?>("--imatrix") { Description = "Importance matrix from `hymba imatrix` (importance-weighted scales)" };
        var allowRequantize = new Option<bool>("--allow-requantize") { Description = "Quantize a GGUF input whose tensors are quantized already (a second rounding on top of the first: worse than quantizing the original checkpoint)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the per-tensor plan, file size and bits per weight; write nothing" };
        var output = new Option<string?>("--output", "-o") { Description = "Output .gguf file (required unless --dry-run; its directory must exist; an existing file is replaced only when it is a GGUF file, or with --force)" };
        var force = new Option<bool>("--force") { Description = "Replace an existing output file that is not a GGUF file" };
        var command = new Command("quantize", "Write the model as one GGUF file in a quantization preset (or print the plan with --dry-run). " +
                                              "Tensors of a GGUF input that are already in their planned type are copied unchanged.")
        {
            checkpoint, type, targetBpw, calibration, method, cost, chunk, chunks, tensorType, imatrix, allowRequantize, dryRun, output, force,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            string? presetName = parse.GetValue(type);
            double? target = parse.GetValue(targetBpw);
            if ((presetName is null) == (target is null)) throw new InvalidRequestException("--type", "give a preset (--type) or a bit budget (--target-bpw), one of them");
            var preset = presetName is null ? null : QuantizationPreset.Find(presetName)
                ?? throw new InvalidRequestException("--type", $"unknown preset '{presetName}' (expected one of {string.Join(", ", QuantizationPreset.All.Select(p => p.Name))})");
            var rounding = RoundingMethods.Parse(parse.GetValue(method)!);
            CostMeasure? measure = parse.GetValue(cost) is { } costName ? CostMeasures.Parse(costName) : null;
            if (parse.GetValue(chunk) < 1) throw new InvalidRequestException("--chunk", $"{parse.GetValue(chunk)}, expected >= 1");
            if (parse.GetValue(chunks) < 1) throw new InvalidRequestException("--chunks", $"{parse.GetValue(chunks)}, expected >= 1");
            var overrides = (parse.GetValue(tensorType) ?? []).Select(TensorTypeOverride.Parse).ToList();
            string? outPath = parse.GetValue(output);
            bool dry = parse.GetValue(dryRun);
            if (!dry && outPath is null) throw new InvalidRequestException("--output", "required unless --dry-run");
            if (outPath is not null) outPath = OutputPaths.CheckFile(outPath, "--output", parse.GetValue(force), GgufOutput);
            string? imatrixPath = parse.GetValue(imatrix);
            var importance = imatrixPath is null ? null : ImportanceMatrix.Load(imatrixPath);
            if (target is not null && overrides.Count > 0) throw new InvalidRequestException("--tensor-type", "not with --target-bpw (the budget chooses every linear weight's type)");
            var options = new GgufExportOptions
            {
                Preset = preset ?? QuantizationPreset.Find("f32")!, Overrides = overrides, Importance = importance, HashSources = !dry, CountNonFinite = true,
                AllowRequantize = parse.GetValue(allowRequantize),
            };
            string input = CheckpointInput.Resolve(parse.GetValue(checkpoint)!, stderr);
            bool calibrated = target is not null || rounding == RoundingMethod.Gptq || parse.GetValue(calibration) is not null;
            var kind = ArtifactKinds.Require(input, "quantize", dry ? ArtifactKind.Checkpoint | ArtifactKind.ConfigOnly | ArtifactKind.Gguf : ArtifactKind.Checkpoint | ArtifactKind.Gguf);
            if (kind == ArtifactKind.Gguf)
            {
                if (calibrated) throw new InvalidRequestException("--target-bpw", "--target-bpw, --method gptq and --calibration need a checkpoint directory (float weights to measure and round), not a GGUF file");
                using var gguf = GgufTensorSource.Open(input);
                if (importance?.CoverageWarning(gguf.Config, imatrixPath!) is { } partial) stderr.WriteLine(partial);
                return dry ? PrintPlan(GgufExporter.Prepare(gguf, options), stdout)
                           : Write(progress => GgufExporter.Export(gguf, outPath!, options, progress), options.Preset, stdout, stderr);
            }
            // NaN/Inf values are counted while the rows are converted (one pass over the input, not two).
            using var ckpt = HymbaCheckpoint.Open(input, new CheckpointReadOptions { ScanNonFinite = false });
            foreach (var w in ckpt.Warnings) stderr.WriteLine($"warning: {w}");
            if (importance?.CoverageWarning(ckpt.Config, imatrixPath!) is { } coverage) stderr.WriteLine(coverage);
            if (calibrated)
                return Calibrated(ckpt, options, new Calibration(target, parse.GetValue(calibration), rounding, measure, parse.GetValue(chunk), parse.GetValue(chunks)), dry, outPath, stdout, stderr);
            return dry ? PrintPlan(GgufExporter.Prepare(ckpt, options), stdout)
                       : Write(progress => GgufExporter.Export(ckpt, outPath!, options, progress), options.Preset, stdout, stderr);
        }));
        return command;
    }

    /// <summary>What -o replaces without --force: a previous GGUF file (its magic bytes).</summary>
    internal static readonly OutputKind GgufOutput = new("a GGUF file", GgufFile.IsGguf);

    private sealed record Calibration(double? Target, string? Text, RoundingMethod Method, CostMeasure? Measure, int ChunkLength, int MaxChunks);

    /// <summary>A bit budget and/or GPTQ: calibration chunks, measured costs and the knapsack's plan, the layer walk that rounds.</summary>
    private static int Calibrated(HymbaCheckpoint ckpt, GgufExportOptions options, Calibration calibration, bool dry, string? outPath, TextWriter stdout, TextWriter stderr)
    {
        if (calibration.Target is { } wanted) new GgufBudgetChoices(ckpt.Config).Budget(wanted);   // refused before any cost is measured
        long[][]? chunks = null;
        string source = "";
        if (calibration.Text is not null)
        {
            var (ids, name) = CalibrationText.Read(ckpt.Files.Directory, calibration.Text, ckpt.Config.VocabSize);
            chunks = CalibrationChunks.Split(ids, calibration.ChunkLength, calibration.MaxChunks);
            source = $"{name} ({chunks.Length} x {calibration.ChunkLength} tokens)";
        }
        if (calibration.Method == RoundingMethod.Gptq && chunks is null) throw new InvalidRequestException("--calibration", "--method gptq needs calibration text (its input Hessians come from it)");
        var notes = new List<string>();
        if (calibration.Target is { } target)
        {
            TensorCosts costs;
            var request = new BudgetCostRequest { Chunks = chunks, Importance = options.Importance, Method = calibration.Method, Measure = calibration.Measure };
            CliOutput.Note(stderr, $"measuring costs: {CostMeasures.Describe(BudgetCostMeasurement.MeasureOf(request, new GgufBudgetChoices(ckpt.Config).Parameters))}");
            using (var progress = new ConsoleProgress(stderr, "measure costs"))
            {
                costs = BudgetCostMeasurement.Measure(ckpt, request, progress);
                progress.Complete();
            }
            var budget = BitBudgetPlan.Create(ckpt.Config, target, costs, chunks is null ? $"imatrix {options.Importance!.Dataset}" : source);
            options = options with { Plan = budget.Plan, Preset = budget.Plan.Preset };
            notes.AddRange(budget.MetadataLines());
            if (dry) stdout.Write(budget.ToText());
        }
        else if (chunks is not null) notes.Add($"calibration={source}");
        options = options with { Method = calibration.Method, PlanNotes = notes };
        if (dry) return PrintPlan(GgufExporter.Prepare(ckpt, options), stdout);
        if (calibration.Method != RoundingMethod.Gptq) return Write(progress => GgufExporter.Export(ckpt, outPath!, options, progress), options.Preset, stdout, stderr);
        var plan = options.Plan ?? QuantizationPlan.Create(ckpt.Config, options.Preset, options.Overrides);
        using var walk = GptqLayerWalk.ForGgml(new CheckpointTensorSource(ckpt), chunks!, plan, options.Importance, options.Threads, ckpt.ReleaseResidentPages);
        walk.Log = line => CliOutput.Note(stderr, $"gptq {line}");
        var result = Write(progress => GgufExporter.Export(ckpt, outPath!, options with { Plan = plan, Rounding = walk }, progress), options.Preset, stdout, stderr);
        foreach (var note in walk.Notes) stderr.WriteLine($"note: {note}");
        stderr.WriteLine($"note: gptq {walk.Times.Layers} layers: {walk.Times}");
        return result;
    }

    private static int PrintPlan((GgufWriter Writer, QuantizationPlan Plan) prepared, TextWriter stdout)
    {
        var (writer, plan) = prepared;
        stdout.Write(plan.ToText());
        stdout.WriteLine($"GGUF file size: {writer.FileSize:N0} bytes ({8.0 * writer.FileSize / plan.TotalParameters:F3} bits per weight including header and padding)");
        return ExitCodes.Success;
    }

    private static int Write(Func<IProgress<(long Done, long Total)>, GgufExportResult> export, QuantizationPreset preset, TextWriter stdout, TextWriter stderr)
    {
        GgufExportResult result;
        using (var progress = new ConsoleProgress(stderr, $"quantize {preset.Name}"))
        {
            result = export(progress);
            progress.Complete();
        }
        foreach (var w in result.Warnings) stderr.WriteLine($"warning: {w}");
        if (RequantizeRule.Warning(result.Requantized, "the file lists them under general.quantization.requantized") is { } requantized) stderr.WriteLine(requantized);
        var fallbacks = result.Plan.Fallbacks.GroupBy(f => $"{GgmlTypes.NameOf(f.Requested!.Value)}->{GgmlTypes.NameOf(f.Type)}").ToList();
        if (fallbacks.Count > 0)
            stderr.WriteLine("note: shape fallbacks (row length not a multiple of the block): " +
                             string.Join(", ", fallbacks.Select(g => $"{g.Key} x{g.Count()}")) + "; --dry-run lists every tensor");
        stdout.WriteLine($"wrote {Path.GetFullPath(result.Path)}: {result.FileBytes:N0} bytes, {result.Plan.Tensors.Count} tensors, " +
                         $"{result.Plan.BitsPerWeight:F3} bits per weight, {result.Plan.Fallbacks.Count()} shape fallback(s)");
        return ExitCodes.Success;
    }
}
