using System.CommandLine;
using HymbaTools.Common;
using HymbaTools.Reports;

namespace HymbaTools.Cli.Commands;

internal static class CompareCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var reference = new Argument<string>("reference") { Description = "Reference artifact (HuggingFace checkpoint directory or .gguf)" };
        var artifacts = new Argument<string[]>("artifacts") { Description = "Artifacts to compare with it (.gguf files or checkpoint directories)", Arity = ArgumentArity.OneOrMore };
        var text = new Option<string?>("--text") { Description = "Evaluation text (encoded with the reference checkpoint's tokenizer.model)" };
        var tokens = new Option<string?>("--tokens") { Description = "Evaluation token ids instead of --text" };
        var randomTokens = TokenInput.RandomTokensOption();
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most evaluation tokens to use", DefaultValueFactory = _ => 4096 };
        var chunk = new Option<int>("--chunk") { Description = "Tokens per forward pass", DefaultValueFactory = _ => 256 };
        var markdown = new Option<string?>("--markdown-out") { Description = "Also write the Markdown report to this file" };
        var json = new Option<bool>("--json") { Description = "Print the JSON report (schemas/comparison-report.schema.json) instead of the Markdown table" };
        var jsonOut = new Option<string?>("--json-out") { Description = "Also write the JSON report to this file" };
        var svg = new Option<string?>("--svg-out") { Description = "Also write a KL-vs-size plot (SVG) to this file" };
        var maxKl = new Option<double?>("--max-kl") { Description = "Exit 1 when any artifact's mean KL exceeds this (for CI)" };
        var command = new Command("compare", "Compare artifacts against a reference on the same tokens: KL divergence, top-1 agreement, perplexity, size")
        {
            reference, artifacts, text, tokens, randomTokens, maxTokens, chunk, json, markdown, jsonOut, svg, maxKl,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            string referencePath = parse.GetValue(reference)!;
            int chunkLength = parse.GetValue(chunk);
            if (chunkLength < 1) throw new InvalidRequestException("--chunk", $"{chunkLength}, expected >= 1");
            foreach (var (option, value) in new[] { ("--markdown-out", parse.GetValue(markdown)), ("--json-out", parse.GetValue(jsonOut)), ("--svg-out", parse.GetValue(svg)) })
                if (value is not null) OutputPaths.CheckFile(value, option);
            using var referenceRunner = ArtifactLoader.Open(referencePath, stderr);
            string tokenizerDir = CliOutput.TokenizerDirectory(referencePath, null);
            var (ids, source) = TokenInput.Read(tokenizerDir, parse.GetValue(text), parse.GetValue(tokens), parse.GetValue(randomTokens), referenceRunner.Config.VocabSize);
            ids = ids.Take(parse.GetValue(maxTokens) + 1).ToArray();
            var rows = new List<ComparisonRow>();
            foreach (string path in parse.GetValue(artifacts)!)
            {
                stderr.WriteLine($"comparing {path} ...");
                using var candidate = ArtifactLoader.Open(path, stderr);
                if (candidate.Config.VocabSize != referenceRunner.Config.VocabSize)
                    throw new InvalidRequestException("artifacts", $"{path} has vocabulary {candidate.Config.VocabSize}, the reference {referenceRunner.Config.VocabSize}");
                var description = ArtifactDescription.Of(path);
                rows.Add(QuantizationComparison.Measure(referenceRunner, candidate, description.Label, description.FileBytes, description.BitsPerWeight, ids, chunkLength));
            }
            var report = new QuantizationComparison(Path.GetFullPath(referencePath), source, (ids.Length - 1) / chunkLength * chunkLength, chunkLength, rows);
            if (parse.GetValue(json)) CliOutput.Json(stdout, report.WriteJson);
            else stdout.Write(report.ToMarkdown());
            if (parse.GetValue(markdown) is { } md) AtomicFile.WriteAllText(md, report.ToMarkdown());
            if (parse.GetValue(jsonOut) is { } js) AtomicFile.Write(js, report.WriteJson);
            if (parse.GetValue(svg) is { } sv) AtomicFile.WriteAllText(sv, report.ToSvg());
            return parse.GetValue(maxKl) is { } limit && rows.Any(r => r.MeanKl > limit) ? ExitCodes.CheckFailed : ExitCodes.Success;
        }));
        return command;
    }
}
