using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using HymbaTools.Common;
using HymbaTools.Formats.Gguf;
using HymbaTools.Formats.Onnx;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Reports;
using HymbaTools.Runtime;
using HymbaTools.Verification;

namespace HymbaTools.Cli.Commands;

/// <summary>`hymba convert` (the CI entry point) and `hymba report merge` (joins per-job reports).</summary>
internal static class ConvertCommand
{
    internal sealed record Target(string Name, string Format, string Kind);

    internal static Target ParseTarget(string text, string option = "--to")
    {
        var parts = text.Split(':', 2);
        if (parts.Length == 2 && parts[0] == "gguf" && QuantizationPreset.Find(parts[1]) is not null) return new Target(text, "gguf", parts[1].ToLowerInvariant());
        if (parts.Length == 2 && parts[0] == "onnx" && Enum.TryParse<OnnxExportType>(parts[1], true, out _)) return new Target(text, "onnx", parts[1].ToLowerInvariant());
        throw new InvalidRequestException(option, $"'{text}' (expected gguf:PRESET with a preset of `hymba quantize --help`, or onnx:f32|f16|int8|int4)");
    }

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "HuggingFace checkpoint directory" + CheckpointInput.HubHelp };
        var to = new Option<string>("--to") { Description = "Targets, comma-separated: gguf:PRESET (e.g. gguf:q4_k_m, gguf:iq4_nl_m) and onnx:TYPE (e.g. onnx:int4)", Required = true };
        var targets = new Option<string?>("--targets") { Description = "Build only these of --to (one CI job per target; join the reports with `hymba report merge`)" };
        var output = new Option<string>("--out", "-o") { Description = "Output directory (created; the targets and report.json/.md/.html go there)", Required = true };
        var golden = new Option<string?>("--golden") { Description = "Golden logits to verify the checkpoint against (default: self-checks)" };
        var tolerance = new Option<double>("--tolerance") { Description = "Largest accepted max-abs logit difference of a verify case (golden or self-check)", DefaultValueFactory = _ => Verifier.DefaultTolerance };
        var input = new TokenInput("Evaluation text (default: the built-in evaluation text when the checkpoint has a tokenizer)");
        var window = new Option<int>("--window") { Description = "Tokens per evaluation window (the second half is scored)", DefaultValueFactory = _ => 256 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most evaluation tokens", DefaultValueFactory = _ => 2048 };
        var maxKl = new Option<double?>("--max-kl") { Description = "Gate: every target's mean KL at most this" };
        var minTop1 = new Option<double?>("--min-top1") { Description = "Gate: every target's same-top-token rate at least this (0..1)" };
        var maxPpl = new Option<double?>("--max-ppl-ratio") { Description = "Gate: every target's perplexity ratio at most this" };
        var json = new Option<bool>("--json") { Description = "Print report.json on stdout instead of the table" };
        var force = new Option<bool>("--force") { Description = "Replace a non-empty output directory" };
        var command = new Command("convert",
            "The CI entry point: validate the checkpoint, verify it (golden or self-checks), export every target, compare each with the reference, " +
            "write report.json/.md/.html, and exit 0 only when every gate holds (1 names the target and figure; 2 bad input). The output directory is complete or absent.")
        {
            checkpoint, to, targets, output, golden, tolerance, window, maxTokens, maxKl, minTop1, maxPpl, json, force,
        };
        input.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            var all = parse.GetValue(to)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t => ParseTarget(t)).ToList();
            var chosen = all;
            if (parse.GetValue(targets) is { } subset)
            {
                var names = subset.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
                foreach (var name in names)
                    if (all.All(t => t.Name != name)) throw new InvalidRequestException("--targets", $"'{name}' is not one of --to ({string.Join(", ", all.Select(t => t.Name))})");
                chosen = all.Where(t => names.Contains(t.Name)).ToList();
            }
            int w = parse.GetValue(window), max = parse.GetValue(maxTokens);
            if (w < 4) throw new InvalidRequestException("--window", $"{w}, expected at least 4");
            if (max < w) throw new InvalidRequestException("--max-tokens", $"{max}, expected at least one window ({w})");
            var gates = Gates(parse.GetValue(maxKl), parse.GetValue(minTop1), parse.GetValue(maxPpl));
            bool replace = parse.GetValue(force);
            string destination = OutputPaths.CheckDirectory(parse.GetValue(output)!, "--out", replace);

            double tol = parse.GetValue(tolerance);
            if (!(tol >= 0)) throw new InvalidRequestException("--tolerance", $"{tol}, expected a non-negative number");
            input.Check(parse);
            if (parse.GetValue(golden) is { } goldenFile && !File.Exists(goldenFile)) throw new InvalidRequestException("--golden", $"{goldenFile}: file not found");
            string checkpointPath = CheckpointInput.Resolve(parse.GetValue(checkpoint)!, stderr);
            ArtifactKinds.Require(checkpointPath, "convert", ArtifactKind.Checkpoint);
            using var ckpt = HymbaCheckpoint.Open(checkpointPath);
            foreach (var warning in ckpt.Warnings) stderr.WriteLine($"warning: {warning}");
            if (!ckpt.HasWeights) throw new InvalidCheckpointException(ckpt.Files.Directory, "", "no weights (config.json only)");
            var evaluation = input.Read(parse, ckpt.Files.Directory, ckpt.Config.VocabSize);
            if (evaluation.Ids.Length < w) throw new InvalidRequestException("--max-tokens", $"{evaluation.Ids.Length} evaluation tokens, fewer than one window ({w})");
            // With --json, stdout is the one JSON object and stderr carries results only: no notes, no progress.
            bool showProgress = !parse.GetValue(json);
            var notes = showProgress ? stderr : TextWriter.Null;
            using var reference = new ReferenceRunner(HymbaModel.Load(new CheckpointTensorSource(ckpt)), ckpt.Files.Directory);
            notes.WriteLine("verifying the checkpoint ...");
            var verify = parse.GetValue(golden) is { } g
                ? Verifier.AgainstGolden(reference, GoldenData.Load(g, reference.Config.VocabSize), tol)
                : Verifier.SelfCheck(reference, tol);
            var verification = ConversionReport.Verification(verify);
            if (!verify.Passed)
            {
                // The report is kept: it says which case failed, by how much and against what bound.
                var failed = verify.Cases.Where(c => !c.Passed).Select(c => "check failed: verify: " + ConversionReport.FailedCase(c, verify.Tolerance)).ToList();
                OutputPaths.WriteDirectory(destination, replace, staging =>
                    ConversionReport.Write(staging, ConversionReport.ToJson(ckpt.Files.Directory, evaluation.Source, [], failed, verification)));
                return PrintReport(destination, failed, parse.GetValue(json), stdout, stderr);
            }

            var ids = evaluation.Ids.Take(max).ToArray();
            notes.WriteLine($"reference logits on {ids.Length} tokens of {evaluation.Source} ...");
            ReferenceLogits referenceLogits;
            using (var progress = new ConsoleProgress(stderr, "reference", "windows", showProgress))
                referenceLogits = ReferenceLogits.Compute(reference, ids, w, progress);

            var results = new List<ConversionTarget>();
            var failures = new List<string>();
            OutputPaths.WriteDirectory(destination, replace, staging =>
            {
                foreach (var target in chosen)
                {
                    notes.WriteLine($"{target.Name}: exporting ...");
                    string path;
                    using (var progress = new ConsoleProgress(stderr, $"{target.Name} export", enabled: showProgress))
                        path = Export(ckpt, target, staging, progress: progress);
                    using var runner = ArtifactLoader.Open(path, stderr);
                    notes.WriteLine($"{target.Name}: comparing ...");
                    ConversionTarget result;
                    using (var progress = new ConsoleProgress(stderr, $"{target.Name} compare", "windows", showProgress))
                        result = MeasureTarget(target.Name, path, Path.Combine(destination, Path.GetRelativePath(staging, path)), runner, referenceLogits, ids, w, progress);
                    results.Add(result);
                    failures.AddRange(gates.Select(gate => gate.Check(result)).OfType<string>());
                }
                var report = ConversionReport.ToJson(ckpt.Files.Directory, evaluation.Source, results, failures, verification, ConversionReport.Evaluation(referenceLogits));
                ConversionReport.Write(staging, report);
            });
            return PrintReport(destination, failures, parse.GetValue(json), stdout, stderr);
        }));
        return command;
    }

    /// <summary>The gates given on the command line (absent options add none).</summary>
    internal static List<ConversionGate> Gates(double? maxKl, double? minTop1, double? maxPpl)
    {
        if (maxKl is { } kl && !(kl >= 0)) throw new InvalidRequestException("--max-kl", $"{kl}, expected a KL bound >= 0");
        if (minTop1 is { } top && double.IsNaN(top)) throw new InvalidRequestException("--min-top1", "NaN, expected a rate in 0..1");
        if (maxPpl is { } ppl && !(ppl > 0)) throw new InvalidRequestException("--max-ppl-ratio", $"{ppl}, expected a ratio > 0");
        var gates = new List<ConversionGate>();
        if (maxKl is { } k) gates.Add(ConversionGate.MaxKl(k));
        if (minTop1 is { } m) gates.Add(ConversionGate.MinTop1(m));
        if (maxPpl is { } p) gates.Add(ConversionGate.MaxPplRatio(p));
        return gates;
    }

    /// <summary>Prints the report written into <paramref name="destination"/> (JSON or its table) and the failed gates; the exit code.</summary>
    internal static int PrintReport(string destination, List<string> failures, bool json, TextWriter stdout, TextWriter stderr)
    {
        var written = JsonNode.Parse(File.ReadAllText(Path.Combine(destination, "report.json")))!.AsObject();
        if (json) stdout.WriteLine(written.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        else stdout.Write(ConversionReport.Markdown(written));
        foreach (var f in failures) stderr.WriteLine(f);
        return failures.Count == 0 ? ExitCodes.Success : ExitCodes.CheckFailed;
    }

    internal static string Export(HymbaCheckpoint ckpt, Target target, string directory, ImportanceMatrix? importance = null, IProgress<(long Done, long Total)>? progress = null)
    {
        if (target.Format == "gguf")
        {
            string path = Path.Combine(directory, $"model-{target.Kind}{(importance is null ? "" : "-imatrix")}.gguf");
            GgufExporter.Export(ckpt, path, new GgufExportOptions { Preset = QuantizationPreset.Find(target.Kind)!, Importance = importance }, progress);
            return path;
        }
        var files = new[] { ckpt.Files.ConfigPath }.Concat(ckpt.Tensors.Files.Select(f => f.Path)).ToList();
        var source = new OnnxExportSource(new CheckpointTensorSource(ckpt), files, ckpt.Files.Directory, ckpt.Files.Directory);
        return OnnxExporter.Export(source, Path.Combine(directory, $"onnx-{target.Kind}"), new OnnxExportOptions { Type = Enum.Parse<OnnxExportType>(target.Kind, true) }, progress).Directory;
    }

    /// <summary>One target's row of the report: its difference from the reference logits, size and speed.</summary>
    internal static ConversionTarget MeasureTarget(string name, string path, string reportedPath, IHymbaRunner runner, ReferenceLogits reference, long[] ids, int window, IProgress<(long Done, long Total)>? progress = null)
    {
        var diff = DiffStatistics.Measure(reference, runner, progress);
        var (prefill, decode) = Speed(runner, ids, window);
        var description = ArtifactDescription.Of(path);
        return new ConversionTarget(name, reportedPath, description.FileBytes, description.BitsPerWeight, diff, prefill, decode, runner.Runtime);
    }

    /// <summary>Prefill tokens/s over one evaluation window and decode tokens/s over 8 steps after it (one run each, after a warm-up call).</summary>
    internal static (double Prefill, double Decode) Speed(IHymbaRunner runner, long[] ids, int window)
    {
        long[] prompt = ids[..Math.Min(window, ids.Length)];
        runner.Forward([prompt[..Math.Min(8, prompt.Length)]]);
        var clock = Stopwatch.StartNew();
        runner.Forward([prompt]);
        double prefill = prompt.Length / clock.Elapsed.TotalSeconds;
        using var session = runner.StartDecode(1, DecodeWindowMode.MatchFullForward);
        session.Step([prompt[..Math.Min(16, prompt.Length)]]);
        clock.Restart();
        for (int i = 0; i < 8; i++) session.Step([[prompt[i % prompt.Length]]]);
        return (prefill, 8 / clock.Elapsed.TotalSeconds);
    }

    public static Command Report(TextWriter stdout, TextWriter stderr)
    {
        var report = new Command("report", "Reports: `report merge` joins the report.json of several `convert --targets` jobs into one");
        var inputs = new Argument<string[]>("reports") { Description = "report.json files (or the directories holding them)", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out", "-o") { Description = "Output directory for the merged report.json/.md/.html", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace a non-empty output directory" };
        var merge = new Command("merge", "Join per-target conversion reports into one (exit 1 when any of them recorded a failed gate)") { inputs, output, force };
        merge.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            var loaded = parse.GetValue(inputs)!.Select(path =>
            {
                string file = Directory.Exists(path) ? Path.Combine(path, "report.json") : path;
                if (!File.Exists(file)) throw new InvalidRequestException("reports", $"{file}: no such report");
                var node = JsonInput.ObjectTree(File.ReadAllBytes(file), 16, problem => new InvalidConfigException(file, "", problem));
                if (node["targets"] is not JsonArray) throw new InvalidConfigException(file, "targets", "missing (expected a report.json written by `hymba convert`)");
                return (file, node);
            }).ToList();
            var merged = ConversionReport.Merge(loaded);
            OutputPaths.WriteDirectory(parse.GetValue(output)!, parse.GetValue(force), directory => ConversionReport.Write(directory, merged));
            stdout.Write(ConversionReport.Markdown(merged));
            return merged["passed"]!.GetValue<bool>() ? ExitCodes.Success : ExitCodes.CheckFailed;
        }));
        report.Subcommands.Add(merge);
        return report;
    }
}
