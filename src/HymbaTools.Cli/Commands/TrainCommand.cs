using System.CommandLine;
using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Synthetic;

namespace HymbaTools.Cli.Commands;

internal static class TrainCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var output = new Option<string>("--output", "-o") { Description = "Checkpoint directory to write", Required = true };
        var preset = new Option<string>("--preset") { Description = "Model shape (see `hymba init --help`); the vocabulary comes from the tokenizer", DefaultValueFactory = _ => "example" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "SentencePiece tokenizer.model to train with (copied into the checkpoint)", Required = true };
        var train = new Option<string[]>("--train") { Description = "Training text files", Required = true, AllowMultipleArgumentsPerToken = true };
        var eval = new Option<string>("--eval") { Description = "Held-out text for perplexity", Required = true };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps", DefaultValueFactory = _ => 600 };
        var batch = new Option<int>("--batch") { Description = "Sequences per step", DefaultValueFactory = _ => 8 };
        var seqLen = new Option<int>("--context") { Description = "Text tokens per training sequence (--seq-len elsewhere means cache lengths)", DefaultValueFactory = _ => 256 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (AdamW, warm-up then cosine)", DefaultValueFactory = _ => 3e-3 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the initial weights and the data order", DefaultValueFactory = _ => 1 };
        var command = new Command("train", "Train a small Hymba model on text with the reference forward pass (the example-model recipe)")
        {
            output, preset, tokenizer, train, eval, steps, batch, seqLen, lr, seed,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            string dir = parse.GetValue(output)!;
            var shape = CheckpointPreset.Find(parse.GetValue(preset)!) ?? throw new InvalidRequestException("--preset", $"unknown preset '{parse.GetValue(preset)}'");
            string tokenizerModel = parse.GetValue(tokenizer)!;
            if (!File.Exists(tokenizerModel)) throw new InvalidRequestException("--tokenizer", $"{tokenizerModel}: file not found");
            var files = parse.GetValue(train)!;
            foreach (var f in files.Append(parse.GetValue(eval)!)) if (!File.Exists(f)) throw new InvalidRequestException("--train", $"{f}: file not found");

            var options = new TrainingOptions
            {
                Steps = parse.GetValue(steps),
                BatchSize = parse.GetValue(batch),
                SequenceLength = parse.GetValue(seqLen),
                LearningRate = parse.GetValue(lr),
                MinLearningRate = parse.GetValue(lr) / 10,
                Seed = parse.GetValue(seed),
            };
            if (options.Steps < 1 || options.BatchSize < 1 || options.SequenceLength < 2)
                throw new InvalidRequestException("--steps", "steps and batch must be >= 1, seq-len >= 2");
            var request = new ExampleModelRequest(dir, shape, tokenizerModel, files, parse.GetValue(eval)!, options,
                "hymba " + string.Join(" ", parse.Tokens.Select(t => t.Value)));
            var result = ExampleModelRecipe.Run(request, message => stderr.WriteLine(message));
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {Path.GetFullPath(dir)}: held-out perplexity {result.HeldOutPerplexity:F2} (unigram {result.UnigramPerplexity:F2}), {result.Duration:hh\\:mm\\:ss}"));
            return ExitCodes.Success;
        }));
        return command;
    }
}
