using System.CommandLine;
using HymbaTools.Common;
using HymbaTools.Verification;

namespace HymbaTools.Cli.Commands;

internal static class DiffCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var a = new Argument<string>("a") { Description = "Reference artifact: checkpoint directory, .gguf file or ONNX export directory" + CheckpointInput.HubHelp };
        var b = new Argument<string>("b") { Description = "Artifact to compare with it (any of the same kinds, a Hub id too)" };
        var input = new TokenInput("Evaluation text, encoded with A's tokenizer (default: the built-in evaluation text when A has a tokenizer)");
        var window = new Option<int>("--window") { Description = "Tokens per window; the first half is context, the second half is scored", DefaultValueFactory = _ => 512 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most evaluation tokens to use", DefaultValueFactory = _ => 4096 };
        var json = new Option<bool>("--json") { Description = "Print the JSON report (schemas/diff-report.schema.json) instead of the text" };
        var jsonOut = new Option<string?>("--json-out") { Description = "Also write the JSON report to this file" };
        var command = new Command("diff",
            "How two artifacts' next-token distributions differ on the same text (llama-perplexity --kl-divergence statistics): max |Δlogit|, NMSE, " +
            "mean KL with its uncertainty and percentiles, same top token, RMS and max Δp of the right token, perplexity of each and their ratio")
        {
            a, b, window, maxTokens, json, jsonOut,
        };
        input.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            int w = parse.GetValue(window), max = parse.GetValue(maxTokens);
            if (w < 4) throw new InvalidRequestException("--window", $"{w}, expected at least 4");
            if (max < w) throw new InvalidRequestException("--max-tokens", $"{max}, expected at least one window ({w})");
            string? outPath = parse.GetValue(jsonOut) is { } o ? OutputPaths.CheckFile(o, "--json-out") : null;
            input.Check(parse);
            string pathA = CheckpointInput.Resolve(parse.GetValue(a)!, stderr), pathB = CheckpointInput.Resolve(parse.GetValue(b)!, stderr);
            ArtifactKinds.Require(pathA, "diff", ArtifactKind.Runnable);
            ArtifactKinds.Require(pathB, "diff", ArtifactKind.Runnable);
            input.CheckSameVocabulary(parse, pathA, pathB, "b");
            using var runnerA = ArtifactLoader.Open(pathA, stderr);
            using var runnerB = ArtifactLoader.Open(pathB, stderr);
            if (runnerA.Config.VocabSize != runnerB.Config.VocabSize)
                throw new InvalidRequestException("b", $"{pathB} has vocabulary {runnerB.Config.VocabSize}, {pathA} has {runnerA.Config.VocabSize}");
            var (ids, source) = input.Read(parse, pathA, runnerA.Config.VocabSize);
            ids = ids.Take(max).ToArray();
            // One progress line per artifact, each counting the windows the result reports (not A's and B's added up).
            ReferenceLogits logitsA;
            using (var progress = new ConsoleProgress(stderr, "diff: a", "windows", enabled: !parse.GetValue(json)))
                logitsA = ReferenceLogits.Compute(runnerA, ids, w, progress);
            DiffStatistics stats;
            using (var progress = new ConsoleProgress(stderr, "diff: b", "windows", enabled: !parse.GetValue(json)))
                stats = DiffStatistics.Measure(logitsA, runnerB, progress);
            if (parse.GetValue(json)) CliOutput.Json(stdout, s => stats.WriteJson(s, runnerA.Description, runnerB.Description, source));
            else stdout.Write(stats.ToText(runnerA.Description, runnerB.Description, source));
            if (outPath is not null) AtomicFile.Write(outPath, s => stats.WriteJson(s, runnerA.Description, runnerB.Description, source));
            return ExitCodes.Success;
        }));
        return command;
    }
}
