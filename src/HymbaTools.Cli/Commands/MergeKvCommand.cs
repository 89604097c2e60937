using System.CommandLine;
using HymbaTools.Common;
using HymbaTools.Merge;
using HymbaTools.Model;
using HymbaTools.Reports;

namespace HymbaTools.Cli.Commands;

internal static class MergeKvCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "HuggingFace checkpoint directory" + CheckpointInput.HubHelp };
        var groups = new Option<string>("--groups") { Description = "KV-reuse groups as JSON, producer first: \"[[1,2],[3,4,5]]\"", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Output checkpoint directory (created; must not exist or be empty, unless --force)", Required = true };
        var input = new TokenInput("Text to measure the accuracy cost on (default: the built-in evaluation text when the checkpoint has a tokenizer)", "Token ids to measure the accuracy cost on");
        var seqLen = new Option<long[]>("--seq-len") { Description = "Sequence lengths for the cache table", DefaultValueFactory = _ => [1024, 8192, 32768], AllowMultipleArgumentsPerToken = true };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON" };
        var force = new Option<bool>("--force") { Description = "Replace a non-empty output directory" };
        var command = new Command("merge-kv", "Impose cross-layer KV sharing after training: consumers drop their K/V rows and read the producer's; prints cache saved and accuracy cost")
        {
            checkpoint, groups, output, seqLen, json, force,
        };
        input.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            foreach (long s in parse.GetValue(seqLen)!)
                if (s < 1) throw new InvalidRequestException("--seq-len", $"{s}, expected a token count >= 1");
            var requested = KvMerge.ParseGroups(parse.GetValue(groups)!);
            OutputPaths.CheckDirectory(parse.GetValue(output)!, "-o", parse.GetValue(force));
            input.Check(parse);
            string path = CheckpointInput.Resolve(parse.GetValue(checkpoint)!, stderr);
            ArtifactKinds.Require(path, "merge-kv", ArtifactKind.Checkpoint);
            using var source = HymbaCheckpoint.Open(path);
            KvMerge.Resolve(source.Config, requested); // the groups are checked against the model before any work
            var (ids, tokenSource) = input.Read(parse, source.Files.Directory, source.Config.VocabSize);
            ids = ids.Take(2048).ToArray();
            if (ids.Length == 0) throw new InvalidRequestException("--tokens", "no tokens to evaluate on");
            var result = KvMerge.Write(source, requested, parse.GetValue(output)!, parse.GetValue(force));
            var report = MergeReport.Measure(source, result, parse.GetValue(seqLen)!, ids, tokenSource);
            if (parse.GetValue(json)) CliOutput.Json(stdout, report.WriteJson);
            else stdout.Write(report.ToText());
            return ExitCodes.Success;
        }));
        return command;
    }
}
