using System.CommandLine;
using HymbaTools.Common;
using HymbaTools.Formats.Gguf;
using HymbaTools.Model;
using HymbaTools.Quantization;

namespace HymbaTools.Cli.Commands;

internal static class QuantizeCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("input") { Description = "HuggingFace checkpoint directory, or a .gguf file written by hymba (f32/f16/bf16; quantized ones need --allow-requantize)" + CheckpointInput.HubHelp };
        var type = new Option<string>("--type") { Description = "Preset: " + string.Join("; ", QuantizationPreset.All.Select(p => $"{p.Name} ({p.Description})")), Required = true };
        var tensorType = new Option<string[]>("--tensor-type") { Description = "Override REGEX=TYPE on stored tensor names, e.g. 'ffn_down=Q8_0' (repeatable; later ones win)" };
        var imatrix = new Option<string?>("--imatrix") { Description = "Importance matrix from `hymba imatrix` (importance-weighted scales)" };
        var allowRequantize = new Option<bool>("--allow-requantize") { Description = "Quantize a GGUF input whose tensors are quantized already (a second rounding on top of the first: worse than quantizing the original checkpoint)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the per-tensor plan, file size and bits per weight; write nothing" };
        var output = new Option<string?>("--output", "-o") { Description = "Output .gguf file (required unless --dry-run; its directory must exist; an existing file is replaced only when it is a GGUF file, or with --force)" };
        var force = new Option<bool>("--force") { Description = "Replace an existing output file that is not a GGUF file" };
        var command = new Command("quantize", "Write the model as one GGUF file in a quantization preset (or print the plan with --dry-run). " +
                                              "Tensors of a GGUF input that are already in their planned type are copied unchanged.")
        {
            checkpoint, type, tensorType, imatrix, allowRequantize, dryRun, output, force,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            string presetName = parse.GetValue(type)!;
            var preset = QuantizationPreset.Find(presetName)
                ?? throw new InvalidRequestException("--type", $"unknown preset '{presetName}' (expected one of {string.Join(", ", QuantizationPreset.All.Select(p => p.Name))})");
            var overrides = (parse.GetValue(tensorType) ?? []).Select(TensorTypeOverride.Parse).ToList();
            string? outPath = parse.GetValue(output);
            bool dry = parse.GetValue(dryRun);
            if (!dry && outPath is null) throw new InvalidRequestException("--output", "required unless --dry-run");
            if (outPath is not null) outPath = OutputPaths.CheckFile(outPath, "--output", parse.GetValue(force), GgufOutput);
            string? imatrixPath = parse.GetValue(imatrix);
            var importance = imatrixPath is null ? null : ImportanceMatrix.Load(imatrixPath);
            var options = new GgufExportOptions
            {
                Preset = preset, Overrides = overrides, Importance = importance, HashSources = !dry, CountNonFinite = true,
                AllowRequantize = parse.GetValue(allowRequantize),
            };
            string input = CheckpointInput.Resolve(parse.GetValue(checkpoint)!, stderr);
            var kind = ArtifactKinds.Require(input, "quantize", dry ? ArtifactKind.Checkpoint | ArtifactKind.ConfigOnly | ArtifactKind.Gguf : ArtifactKind.Checkpoint | ArtifactKind.Gguf);
            if (kind == ArtifactKind.Gguf)
            {
                using var gguf = GgufTensorSource.Open(input);
                if (importance?.CoverageWarning(gguf.Config, imatrixPath!) is { } partial) stderr.WriteLine(partial);
                return dry ? PrintPlan(GgufExporter.Prepare(gguf, options), stdout)
                           : Write(progress => GgufExporter.Export(gguf, outPath!, options, progress), preset, stdout, stderr);
            }
            // NaN/Inf values are counted while the rows are converted (one pass over the input, not two).
            using var ckpt = HymbaCheckpoint.Open(input, new CheckpointReadOptions { ScanNonFinite = false });
            foreach (var w in ckpt.Warnings) stderr.WriteLine($"warning: {w}");
            if (importance?.CoverageWarning(ckpt.Config, imatrixPath!) is { } coverage) stderr.WriteLine(coverage);
            return dry ? PrintPlan(GgufExporter.Prepare(ckpt, options), stdout)
                       : Write(progress => GgufExporter.Export(ckpt, outPath!, options, progress), preset, stdout, stderr);
        }));
        return command;
    }

    /// <summary>What -o replaces without --force: a previous GGUF file (its magic bytes).</summary>
    internal static readonly OutputKind GgufOutput = new("a GGUF file", GgufFile.IsGguf);

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
