using System.CommandLine;
using HymbaTools.Common;
using HymbaTools.Runtime;
using HymbaTools.Verification;

namespace HymbaTools.Cli.Commands;

internal static class VerifyCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var artifact = new Argument<string>("artifact") { Description = "HuggingFace checkpoint directory, .gguf file or ONNX export directory" + CheckpointInput.HubHelp };
        var golden = new Option<string?>("--golden") { Description = "Golden logits (safetensors: <case>.input_ids / <case>.logits, optional gen_* decode cases)" };
        var tolerance = new Option<double>("--tolerance") { Description = "Largest accepted max-abs logit difference per case", DefaultValueFactory = _ => Verifier.DefaultTolerance };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table" };
        var command = new Command("verify",
            "Run the reference forward pass and compare with golden logits (exit 0 = all cases within tolerance, 1 = some are not, 2 = bad input). " +
            "Without --golden: self-checks (finite logits, prefill+decode = full forward, batch = single, deterministic); an ONNX export is also compared with the checkpoint it was made from when that is still on disk unchanged.")
        {
            artifact, golden, tolerance, json,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            double tol = parse.GetValue(tolerance);
            if (!(tol >= 0)) throw new InvalidRequestException("--tolerance", $"{tol}, expected a non-negative number");
            string path = CheckpointInput.Resolve(parse.GetValue(artifact)!, stderr);
            ArtifactKinds.Require(path, "verify", ArtifactKind.Runnable);
            if (parse.GetValue(golden) is { } goldenFile && !File.Exists(goldenFile)) throw new InvalidRequestException("--golden", $"{goldenFile}: file not found");
            using var runner = ArtifactLoader.Open(path, stderr);
            string? goldenPath = parse.GetValue(golden);
            var report = goldenPath is null
                ? Verifier.SelfCheck(runner, tol)
                : Verifier.AgainstGolden(runner, GoldenData.Load(goldenPath, runner.Config.VocabSize), tol);
            if (goldenPath is null && runner is OnnxRunner onnx && ArtifactLoader.SourceOf(onnx, stderr) is { } source)
            {
                using (source)
                    report = report with { Cases = [.. report.Cases, Verifier.AgainstSource(source, onnx, tol, lossless: onnx.ExportType == "f32")] };
            }
            if (parse.GetValue(json)) CliOutput.Json(stdout, report.WriteJson);
            else stdout.Write(report.ToText());
            return report.Passed ? ExitCodes.Success : ExitCodes.CheckFailed;
        }));
        return command;
    }
}
