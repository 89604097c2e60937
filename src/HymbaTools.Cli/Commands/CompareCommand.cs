using System.CommandLine;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Verification;
using HymbaTools.Reports;

namespace HymbaTools.Cli.Commands;

internal static class CompareCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var reference = new Argument<string>("reference") { Description = "Reference artifact (HuggingFace checkpoint directory or .gguf)" + CheckpointInput.HubHelp };
        var artifacts = new Argument<string[]>("artifacts") { Description = "Artifacts to compare with it (.gguf files, checkpoint or ONNX export directories, Hub ids)", Arity = ArgumentArity.ZeroOrMore };
        var input = new TokenInput("Evaluation text (encoded with the reference's tokenizer: tokenizer.model beside it, or a .gguf file's own)");
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most evaluation tokens to use", DefaultValueFactory = _ => 4096 };
        var chunk = new Option<int>("--chunk") { Description = "Tokens per forward pass", DefaultValueFactory = _ => 256 };
        var markdown = new Option<string?>("--markdown-out") { Description = "Also write the Markdown report to this file" };
        var json = new Option<bool>("--json") { Description = "Print the JSON report (schemas/comparison-report.schema.json) instead of the Markdown table" };
        var jsonOut = new Option<string?>("--json-out") { Description = "Also write the JSON report to this file" };
        var svg = new Option<string?>("--svg-out") { Description = "Also write a KL-vs-size plot (SVG) to this file" };
        var maxKl = new Option<double?>("--max-kl") { Description = "Gate: exit 1 when any artifact's mean KL exceeds this" };
        var minTop1 = new Option<double?>("--min-top1") { Description = "Gate: every artifact's same-top-token rate at least this (0..1)" };
        var maxPpl = new Option<double?>("--max-ppl-ratio") { Description = "Gate: every artifact's perplexity ratio at most this" };
        var types = new Option<string?>("--types") { Description = "With --out: also build these variants from the reference checkpoint, e.g. q8_0,q4_k_m,iq4_nl_m,onnx:int4" };
        var imatrix = new Option<string?>("--imatrix") { Description = "With --types: build every GGUF variant also with this importance matrix" };
        var outDir = new Option<string?>("--out", "-o") { Description = "Write report.json/.md/.html (and the built variants) into this directory; windows then score their second half" };
        var force = new Option<bool>("--force") { Description = "Replace a non-empty --out directory" };
        var command = new Command("compare", "Compare artifacts against a reference on the same tokens: KL divergence, top-1 agreement, perplexity, size")
        {
            reference, artifacts, maxTokens, chunk, json, markdown, jsonOut, svg, maxKl, minTop1, maxPpl, types, imatrix, outDir, force,
        };
        input.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            // Every option and input is checked before the first forward pass.
            int chunkLength = parse.GetValue(chunk);
            if (chunkLength < 1) throw new InvalidRequestException("--chunk", $"{chunkLength}, expected >= 1");
            foreach (var (option, value) in new[] { ("--markdown-out", parse.GetValue(markdown)), ("--json-out", parse.GetValue(jsonOut)), ("--svg-out", parse.GetValue(svg)) })
                if (value is not null) OutputPaths.CheckFile(value, option);
            var gates = ConvertCommand.Gates(parse.GetValue(maxKl), parse.GetValue(minTop1), parse.GetValue(maxPpl));
            input.Check(parse);
            string? reportDirectory = parse.GetValue(outDir);
            var built = ParseTypes(parse.GetValue(types));
            if (reportDirectory is null && built.Count > 0) throw new InvalidRequestException("--types", "builds variants only into a report directory: add --out DIR");
            if (parse.GetValue(imatrix) is not null && built.Count == 0) throw new InvalidRequestException("--imatrix", "applies to the variants --types builds, and none is given");
            if (parse.GetValue(imatrix) is { } imFile && !File.Exists(imFile)) throw new InvalidRequestException("--imatrix", $"{imFile}: file not found");
            string referencePath = CheckpointInput.Resolve(parse.GetValue(reference)!, stderr);
            ArtifactKinds.Require(referencePath, "compare", built.Count > 0 ? ArtifactKind.Checkpoint : ArtifactKind.Runnable);
            string[] artifactPaths = [.. (parse.GetValue(artifacts) ?? []).Select(a => CheckpointInput.Resolve(a, stderr))];
            if (artifactPaths.Length == 0 && built.Count == 0)
                throw new InvalidRequestException("artifacts", reportDirectory is null ? "nothing to compare: give artifacts, or --types with --out" : "nothing to compare: give artifacts or --types");
            foreach (string path in artifactPaths)
            {
                if (ArtifactKinds.Require(path, "compare", ArtifactKind.Runnable) == ArtifactKind.None)
                    throw new InvalidRequestException("artifacts", $"{path}: no such file or directory (expected a .gguf file, a checkpoint or an ONNX export directory)");
                input.CheckSameVocabulary(parse, referencePath, path, "artifacts");
            }
            string? destination = reportDirectory is null ? null : OutputPaths.CheckDirectory(reportDirectory, "--out", parse.GetValue(force));

            using var referenceRunner = ArtifactLoader.Open(referencePath, stderr);
            var (ids, source) = input.Read(parse, referencePath, referenceRunner.Config.VocabSize);
            if (destination is not null)
                return Report(artifactPaths, built, parse.GetValue(imatrix), referencePath, referenceRunner, ids.Take(parse.GetValue(maxTokens)).ToArray(), source,
                    chunkLength, destination, parse.GetValue(force), gates, parse.GetValue(json), stdout, stderr);
            ids = ids.Take(parse.GetValue(maxTokens) + 1).ToArray();
            var rows = new List<ComparisonRow>();
            foreach (string path in artifactPaths)
            {
                if (!parse.GetValue(json)) stderr.WriteLine($"comparing {path} ...");
                using var candidate = OpenComparable(path, referenceRunner, stderr);
                var description = ArtifactDescription.Of(path);
                using var progress = new ConsoleProgress(stderr, $"{description.Label} compare", "chunks", !parse.GetValue(json));
                rows.Add(QuantizationComparison.Measure(referenceRunner, candidate, description.Label, description.FileBytes, description.BitsPerWeight, ids, chunkLength, progress));
            }
            var report = new QuantizationComparison(Path.GetFullPath(referencePath), source, (ids.Length - 1) / chunkLength * chunkLength, chunkLength, rows);
            if (parse.GetValue(json)) CliOutput.Json(stdout, report.WriteJson);
            else stdout.Write(report.ToMarkdown());
            if (parse.GetValue(markdown) is { } md) AtomicFile.WriteAllText(md, report.ToMarkdown());
            if (parse.GetValue(jsonOut) is { } js) AtomicFile.Write(js, report.WriteJson);
            if (parse.GetValue(svg) is { } sv) AtomicFile.WriteAllText(sv, report.ToSvg());
            var failures = rows.SelectMany(r => gates.Select(g => g.Check(r))).OfType<string>().ToList();
            foreach (var f in failures) stderr.WriteLine(f);
            return failures.Count == 0 ? ExitCodes.Success : ExitCodes.CheckFailed;
        }));
        return command;
    }

    /// <summary>Opens an artifact to compare with the reference; their vocabularies must agree.</summary>
    private static Runtime.IHymbaRunner OpenComparable(string path, Runtime.IHymbaRunner reference, TextWriter stderr)
    {
        var runner = ArtifactLoader.Open(path, stderr);
        int vocab = runner.Config.VocabSize;
        if (vocab == reference.Config.VocabSize) return runner;
        runner.Dispose();
        throw new InvalidRequestException("artifacts", $"{path} has vocabulary {vocab}, the reference {reference.Config.VocabSize}");
    }

    private static readonly bool[] BothImportanceSettings = [false, true];

    /// <summary>The variants --types asks for (gguf: is implied).</summary>
    private static List<ConvertCommand.Target> ParseTypes(string? types) =>
        (types ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => ConvertCommand.ParseTarget(t.Contains(':', StringComparison.Ordinal) ? t : "gguf:" + t, "--types")).ToList();

    /// <summary>The report mode: existing artifacts plus variants built from the reference, against reference logits computed once.</summary>
    private static int Report(string[] artifacts, List<ConvertCommand.Target> built, string? imatrixPath, string referencePath, Runtime.IHymbaRunner reference, long[] ids, string source,
        int window, string outDir, bool force, List<ConversionGate> gates, bool json, TextWriter stdout, TextWriter stderr)
    {
        var importance = imatrixPath is null ? null : ImportanceMatrix.Load(imatrixPath);
        string destination = outDir;
        using var checkpoint = built.Count > 0 ? HymbaCheckpoint.Open(referencePath) : null;
        if (checkpoint is not null && importance?.CoverageWarning(checkpoint.Config, imatrixPath!) is { } coverage) stderr.WriteLine(coverage);
        var notes = json ? TextWriter.Null : stderr;
        ReferenceLogits referenceLogits;
        using (var progress = new ConsoleProgress(stderr, "reference", "windows", !json))
            referenceLogits = ReferenceLogits.Compute(reference, ids, window, progress);
        var results = new List<ConversionTarget>();
        var failures = new List<string>();
        OutputPaths.WriteDirectory(destination, force, staging =>
        {
            void Add(string name, string path, string reportedPath)
            {
                notes.WriteLine($"{name}: comparing ...");
                using var runner = OpenComparable(path, reference, stderr);
                using var progress = new ConsoleProgress(stderr, $"{name} compare", "windows", !json);
                var result = ConvertCommand.MeasureTarget(name, path, reportedPath, runner, referenceLogits, ids, window, progress);
                results.Add(result);
                failures.AddRange(gates.Select(g => g.Check(result)).OfType<string>());
            }
            foreach (var path in artifacts) Add(ArtifactDescription.Of(path).Label, path, Path.GetFullPath(path));
            foreach (var target in built)
            {
                foreach (var withImportance in target.Format == "gguf" && importance is not null ? BothImportanceSettings : [false])
                {
                    string label = target.Name + (withImportance ? ConversionReport.ImportanceSuffix : "");
                    notes.WriteLine($"{label}: building ...");
                    string path;
                    using (var progress = new ConsoleProgress(stderr, $"{label} build", enabled: !json))
                        path = ConvertCommand.Export(checkpoint!, target, staging, withImportance ? importance : null, progress);
                    Add(label, path, Path.Combine(destination, Path.GetRelativePath(staging, path)));
                }
            }
            ConversionReport.Write(staging, ConversionReport.ToJson(Path.GetFullPath(referencePath), source, results, failures, evaluation: ConversionReport.Evaluation(referenceLogits)));
        });
        return ConvertCommand.PrintReport(destination, failures, json, stdout, stderr);
    }
}
