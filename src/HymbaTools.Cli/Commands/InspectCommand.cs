using System.CommandLine;
using HymbaTools.Model;
using HymbaTools.Reports;

namespace HymbaTools.Cli.Commands;

internal static class InspectCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "HuggingFace checkpoint directory (config.json + safetensors, or config.json only), a .gguf file or an ONNX export directory" + CheckpointInput.HubHelp };
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout instead of tables" };
        var seqLen = new Option<long[]>("--seq-len")
        {
            Description = "Sequence length(s) S for the cache-size table (repeatable)",
            DefaultValueFactory = _ => [.. InspectReport.DefaultSequenceLengths],
            AllowMultipleArgumentsPerToken = true,
        };
        var strict = new Option<bool>("--strict") { Description = "NaN/Inf weights are an error instead of a warning" };
        var checksums = new Option<bool>("--checksums") { Description = "Recompute the per-tensor checksums (XXH3-128; sha256 in files before 0.2) a .gguf file or ONNX export recorded when written; exit 1 naming every tensor that differs" };
        var command = new Command("inspect", "Validate a checkpoint and show its config, layer plan, parameter counts and cache sizes")
        {
            checkpoint, json, seqLen, strict, checksums,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            var lengths = parse.GetValue(seqLen) ?? [];
            foreach (long s in lengths)
                if (s < 1) throw new HymbaTools.Common.InvalidRequestException("--seq-len", $"{s}, expected a token count >= 1");
            string path = CheckpointInput.Resolve(parse.GetValue(checkpoint)!, stderr);
            if (parse.GetValue(checksums)) return VerifyChecksums(path, stdout, stderr);
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

    private static int VerifyChecksums(string path, TextWriter stdout, TextWriter stderr)
    {
        IReadOnlyList<HymbaTools.Formats.ChecksumMismatch>? mismatches;
        int count;
        if (HymbaTools.Runtime.OnnxRunner.IsOnnxDirectory(path))
        {
            mismatches = HymbaTools.Formats.TensorChecksums.VerifyOnnx(path);
            count = -1;
        }
        else if (ArtifactLoader.IsGguf(path))
        {
            using var file = HymbaTools.Formats.Gguf.GgufFile.Open(path);
            mismatches = HymbaTools.Formats.TensorChecksums.Verify(file);
            count = file.Tensors.Count;
        }
        else throw new HymbaTools.Common.InvalidRequestException("--checksums", $"{path} is not a .gguf file or an ONNX export (a HuggingFace checkpoint records no checksums)");
        if (mismatches is null)
        {
            stderr.WriteLine($"check failed: {path} records no tensor checksums (written by an older hymba?)");
            return ExitCodes.CheckFailed;
        }
        foreach (var m in mismatches) stderr.WriteLine($"check failed: tensor {m.Tensor}: {m.Algorithm} {m.Actual}, recorded {m.Recorded}");
        if (mismatches.Count > 0) return ExitCodes.CheckFailed;
        stdout.WriteLine(count >= 0 ? $"checksums: all {count} tensors match" : "checksums: every recorded tensor matches");
        return ExitCodes.Success;
    }
}
