using System.CommandLine;
using HymbaTools.Model;
using HymbaTools.Reports;

namespace HymbaTools.Cli.Commands;

internal static class InspectCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "HuggingFace checkpoint directory (config.json + safetensors, or config.json only), a .gguf file or an ONNX export directory" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout instead of tables" };
        var seqLen = new Option<long[]>("--seq-len")
        {
            Description = "Sequence length(s) S for the cache-size table (repeatable; default 1024 8192 32768)",
            AllowMultipleArgumentsPerToken = true,
        };
        var strict = new Option<bool>("--strict") { Description = "Treat NaN/Inf weights as an error (default: warning)" };
        var command = new Command("inspect", "Validate a checkpoint and show its config, layer plan, parameter counts and cache sizes")
        {
            checkpoint, json, seqLen, strict,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            var lengths = parse.GetValue(seqLen) ?? [];
            foreach (long s in lengths)
                if (s < 0) throw new HymbaTools.Common.InvalidRequestException("--seq-len", $"{s} is negative, expected a token count >= 0");
            string path = parse.GetValue(checkpoint)!;
            InspectReport report;
            if (HymbaTools.Runtime.OnnxRunner.IsOnnxDirectory(path)) report = OnnxInspect.For(path, lengths);
            else if (ArtifactLoader.IsGguf(path))
            {
                using var gguf = HymbaTools.Formats.Gguf.GgufTensorSource.Open(path);
                report = GgufInspect.For(gguf, lengths);
            }
            else
            {
                using var ckpt = HymbaCheckpoint.Open(path, new CheckpointReadOptions { Strict = parse.GetValue(strict) });
                report = InspectReport.For(ckpt, lengths);
                foreach (var w in ckpt.Warnings) stderr.WriteLine($"warning: {w}");
            }
            if (parse.GetValue(json)) CliOutput.Json(stdout, report.WriteJson);
            else stdout.Write(report.ToText());
            return ExitCodes.Success;
        }));
        return command;
    }
}
