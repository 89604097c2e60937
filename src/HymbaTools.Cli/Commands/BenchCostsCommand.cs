using System.CommandLine;
using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Quantization.BitBudget;
using HymbaTools.Quantization.Calibration;

namespace HymbaTools.Cli.Commands;

/// <summary>`hymba bench costs`: how well the cheap costs (layer-output error, importance-weighted error) rank the tensors and types as the measured KL does (README "Bit budget and GPTQ").</summary>
internal static class BenchCostsCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "HuggingFace checkpoint directory" + CheckpointInput.HubHelp };
        var calibration = new Option<string>("--calibration") { Description = "Calibration text both costs are measured on (encoded with the checkpoint's tokenizer)", Required = true };
        var chunk = new Option<int>("--chunk") { Description = "Calibration tokens per sequence", DefaultValueFactory = _ => 256 };
        var chunks = new Option<int>("--chunks") { Description = "Most calibration sequences", DefaultValueFactory = _ => 4 };
        var method = new Option<string>("--method") { Description = "Rounding the KL costs are measured with: rtn or gptq (the proxy is always measured with rtn)", DefaultValueFactory = _ => "rtn" };
        var targets = new Option<string>("--target-bpw") { Description = "Budgets (comma-separated bits per weight) at which the plans chosen by each cost are compared", DefaultValueFactory = _ => "" };
        var command = new Command("costs",
            "Measures every linear weight's cost at every budget type as KL on calibration text (one forward per tensor and type), as the layer-output error " +
            "and as the importance-weighted squared error (the costs large models use), and prints Spearman's rank correlation of each with KL (all pairs, " +
            "and across tensors within each type) and, at each --target-bpw, the KL cost of the plan each would choose")
        {
            checkpoint, calibration, chunk, chunks, method, targets,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            var rounding = RoundingMethods.Parse(parse.GetValue(method)!);
            if (parse.GetValue(chunk) < 1) throw new InvalidRequestException("--chunk", $"{parse.GetValue(chunk)}, expected >= 1");
            if (parse.GetValue(chunks) < 1) throw new InvalidRequestException("--chunks", $"{parse.GetValue(chunks)}, expected >= 1");
            var budgets = parse.GetValue(targets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 ? v
                    : throw new InvalidRequestException("--target-bpw", $"'{t}', expected positive numbers of bits per weight")).ToList();
            string input = CheckpointInput.Resolve(parse.GetValue(checkpoint)!, stderr);
            ArtifactKinds.Require(input, "bench costs", ArtifactKind.Checkpoint);
            using var ckpt = HymbaCheckpoint.Open(input);
            foreach (double budget in budgets) new GgufBudgetChoices(ckpt.Config).Budget(budget);   // refused before anything is measured
            var (ids, name) = CalibrationText.Read(ckpt.Files.Directory, parse.GetValue(calibration)!, ckpt.Config.VocabSize);
            var split = CalibrationChunks.Split(ids, parse.GetValue(chunk), parse.GetValue(chunks));
            TensorCosts Measure(CostMeasure measure, RoundingMethod method)
            {
                using var progress = new ConsoleProgress(stderr, $"measure {measure.ToString().ToLowerInvariant()} costs", "tensors x types");
                var costs = BudgetCostMeasurement.Measure(ckpt, new BudgetCostRequest { Chunks = split, Method = method, Measure = measure }, progress);
                progress.Complete();
                return costs;
            }
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var kl = Measure(CostMeasure.Kl, rounding);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{ckpt.Config.Layers.Count} layers, calibration {name} ({split.Length} x {parse.GetValue(chunk)} tokens); KL costs ({RoundingMethods.NameOf(rounding)} rounding) in {clock.Elapsed.TotalSeconds:F0} s"));
            foreach (var measure in new[] { CostMeasure.LayerOutput, CostMeasure.Proxy })
            {
                clock.Restart();
                var costs = Measure(measure, RoundingMethod.Rtn);
                string label = $"the {CostMeasures.Describe(measure)}";
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label} (rtn rounding) in {clock.Elapsed.TotalSeconds:F0} s:"));
                stdout.Write(CostAgreement.Compare(ckpt.Config, kl, costs, budgets).ToText("KL", label));
            }
            return ExitCodes.Success;
        }));
        return command;
    }
}
