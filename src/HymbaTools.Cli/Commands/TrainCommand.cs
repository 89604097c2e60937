using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Model.Training;
using HymbaTools.Synthetic;
using HymbaTools.Text;

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
        var seqLen = new Option<int>("--seq-len") { Description = "Text tokens per sequence", DefaultValueFactory = _ => 256 };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (AdamW, warm-up then cosine)", DefaultValueFactory = _ => 3e-3 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the initial weights and the data order", DefaultValueFactory = _ => 1 };
        var command = new Command("train", "Train a small Hymba model on text with the reference forward pass (the example-model recipe)")
        {
            output, preset, tokenizer, train, eval, steps, batch, seqLen, lr, seed,
        };
        command.SetAction(parse => CommandRunner.Run(stderr, () =>
        {
            string dir = parse.GetValue(output)!;
            var shape = CheckpointPreset.Find(parse.GetValue(preset)!) ?? throw new InvalidRequestException("--preset", $"unknown preset '{parse.GetValue(preset)}'");
            string tokenizerModel = parse.GetValue(tokenizer)!;
            if (!File.Exists(tokenizerModel)) throw new InvalidRequestException("--tokenizer", $"{tokenizerModel}: file not found");
            var files = parse.GetValue(train)!;
            foreach (var f in files.Append(parse.GetValue(eval)!)) if (!File.Exists(f)) throw new InvalidRequestException("--train", $"{f}: file not found");

            int pieces = HymbaTools.Formats.Gguf.GgufTokenizerMetadata.ReadSentencePiece(tokenizerModel).Pieces.Count;
            ExampleModelFiles.WriteTokenizerFiles(dir, tokenizerModel, pieces);
            var tok = HymbaTokenizer.Load(dir);
            var trainTokens = files.SelectMany(f => tok.Encode(File.ReadAllText(f), addBos: true, addEos: true)).ToList();
            var evalTokens = tok.Encode(File.ReadAllText(parse.GetValue(eval)!), addBos: true, addEos: true).ToList();
            stderr.WriteLine($"{trainTokens.Count:N0} training tokens from {files.Length} files, {evalTokens.Count:N0} held-out tokens, vocabulary {pieces} + [PAD]");

            var model = shape with { Vocab = pieces + 1 };
            string initial = Path.Combine(Path.GetTempPath(), "hymba-train-init-" + Guid.NewGuid().ToString("N"));
            try
            {
                RandomCheckpointWriter.Write(initial, new RandomCheckpointOptions(model, parse.GetValue(seed), SafetensorsDType.F32));
                using var init = HymbaCheckpoint.Open(initial);
                using var trainer = new HymbaTrainer(new CheckpointTensorSource(init));
                var options = new TrainingOptions
                {
                    Steps = parse.GetValue(steps), BatchSize = parse.GetValue(batch), SequenceLength = parse.GetValue(seqLen),
                    LearningRate = parse.GetValue(lr), MinLearningRate = parse.GetValue(lr) / 10, Seed = parse.GetValue(seed),
                };
                var result = trainer.Train(trainTokens, evalTokens, options, message => stderr.WriteLine(message));
                string configText = PythonStyleJson.Serialize(model.ToConfigJson("bfloat16"));
                trainer.Save(dir, configText, SafetensorsDType.BF16);
                var report = new Dictionary<string, object>
                {
                    ["command"] = "hymba train " + string.Join(" ", parse.Tokens.Select(t => t.Value)),
                    ["seed"] = parse.GetValue(seed), ["steps"] = result.Steps, ["batch"] = options.BatchSize, ["sequence_length"] = options.SequenceLength,
                    ["tokens_seen"] = result.TokensSeen, ["training_seconds"] = Math.Round(result.Duration.TotalSeconds),
                    ["final_train_loss"] = Math.Round(result.FinalTrainLoss, 4),
                    ["held_out_perplexity"] = Math.Round(result.HeldOutPerplexity, 3),
                    ["held_out_tokens"] = Math.Min(options.EvaluationTokens, evalTokens.Count),
                    ["unigram_perplexity"] = Math.Round(result.UnigramPerplexity, 3),
                    ["parameters"] = ModelFootprint.Of(init.Config).ParameterCount,
                };
                AtomicFile.WriteAllText(Path.Combine(dir, "training.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }) + "\n");
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"wrote {Path.GetFullPath(dir)}: held-out perplexity {result.HeldOutPerplexity:F2} (unigram {result.UnigramPerplexity:F2}), {result.Duration:hh\\:mm\\:ss}"));
            }
            finally
            {
                try { Directory.Delete(initial, recursive: true); } catch (IOException) { }
            }
            return ExitCodes.Success;
        }));
        return command;
    }
}
