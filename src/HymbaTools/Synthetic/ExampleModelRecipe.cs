using System.Text.Json;
using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Text;

namespace HymbaTools.Synthetic;

internal sealed record ExampleModelRequest(string OutputDirectory, CheckpointPreset Shape, string TokenizerModel, IReadOnlyList<string> TrainFiles,
    string EvalFile, TrainingOptions Options, string CommandLine);

/// <summary>
/// The example-model recipe: tokenizer files next to the checkpoint, text encoded with them (BOS/EOS around each
/// file), random initial weights from the preset (vocabulary = pieces + [PAD]), training, a bf16 HuggingFace
/// checkpoint and a training.json with the measured numbers.
/// </summary>
internal static class ExampleModelRecipe
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static TrainingResult Run(ExampleModelRequest request, Action<string>? log = null)
    {
        string dir = request.OutputDirectory;
        int pieces = HymbaTokenizer.CountPieces(request.TokenizerModel);
        ExampleModelFiles.WriteTokenizerFiles(dir, request.TokenizerModel, pieces);
        var tokenizer = HymbaTokenizer.Load(dir);
        var trainTokens = request.TrainFiles.SelectMany(f => tokenizer.Encode(HymbaTools.Text.TextFile.Read(f, "--train"), addBos: true, addEos: true)).ToList();
        var evalTokens = tokenizer.Encode(HymbaTools.Text.TextFile.Read(request.EvalFile, "--eval"), addBos: true, addEos: true).ToList();
        log?.Invoke($"{trainTokens.Count:N0} training tokens from {request.TrainFiles.Count} files, {evalTokens.Count:N0} held-out tokens, vocabulary {pieces} + [PAD]");

        var shape = request.Shape with { Vocab = pieces + 1 };
        string initial = Path.Combine(Path.GetTempPath(), "hymba-train-init-" + Guid.NewGuid().ToString("N"));
        try
        {
            RandomCheckpointWriter.Write(initial, new RandomCheckpointOptions(shape, request.Options.Seed, SafetensorsDType.F32));
            using var init = HymbaCheckpoint.Open(initial);
            using var trainer = new HymbaTrainer(new CheckpointTensorSource(init));
            var result = trainer.Train(trainTokens, evalTokens, request.Options, log);
            trainer.Save(dir, PythonStyleJson.Serialize(shape.ToConfigJson("bfloat16")), SafetensorsDType.BF16);
            var o = request.Options;
            var report = new Dictionary<string, object>
            {
                ["command"] = request.CommandLine,
                ["seed"] = o.Seed,
                ["steps"] = result.Steps,
                ["batch"] = o.BatchSize,
                ["sequence_length"] = o.SequenceLength,
                ["learning_rate"] = o.LearningRate,
                ["tokens_seen"] = result.TokensSeen,
                ["training_seconds"] = Math.Round(result.Duration.TotalSeconds),
                ["final_train_loss"] = Math.Round(result.FinalTrainLoss, 4),
                ["held_out_file"] = Path.GetFileName(request.EvalFile),
                ["held_out_tokens"] = Math.Min(o.EvaluationTokens, evalTokens.Count),
                ["held_out_perplexity"] = Math.Round(result.HeldOutPerplexity, 3),
                ["unigram_perplexity"] = Math.Round(result.UnigramPerplexity, 3),
                ["parameters"] = ModelFootprint.Of(init.Config).ParameterCount,
                ["machine_cores"] = Environment.ProcessorCount,
            };
            AtomicFile.WriteAllText(Path.Combine(dir, "training.json"), JsonSerializer.Serialize(report, Indented) + "\n");
            return result;
        }
        finally
        {
            try { Directory.Delete(initial, recursive: true); } catch (IOException) { }
        }
    }
}
