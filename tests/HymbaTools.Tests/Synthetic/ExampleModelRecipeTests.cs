using HymbaTools.Runtime;
using System.Text.Json;
using HymbaTools.Model;
using HymbaTools.Synthetic;
using HymbaTools.Tests.TestData;
using HymbaTools.Verification;

namespace HymbaTools.Tests.Synthetic;

/// <summary>The training recipe end to end at a toy size: loss falls, the checkpoint it writes loads and is consistent.</summary>
[Collection(HymbaTools.Tests.Model.LibTorchThreadCountGroup.Name)]
public class ExampleModelRecipeTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_few_training_steps_lower_the_loss_and_write_a_loadable_checkpoint()
    {
        // Train on the opening of Persuasion and evaluate on a passage far from it, which training never saw.
        string novel = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "example-data", "persuasion.txt"));
        string train = _dir.File("train.txt"), eval = _dir.File("eval.txt");
        File.WriteAllText(train, novel[..60000]);
        File.WriteAllText(eval, novel[300000..320000]);
        var shape = CheckpointPreset.Find("tiny")!;
        string output = Path.Combine(_dir.Path, "model");
        var log = new List<string>();
        var result = ExampleModelRecipe.Run(new ExampleModelRequest(output, shape, Path.Combine(AppContext.BaseDirectory, "example-tokenizer", "tokenizer.model"),
            [train], eval, new TrainingOptions { Steps = 60, BatchSize = 8, SequenceLength = 32, LearningRate = 1e-2, WarmupSteps = 4, LogEvery = 1, EvaluationTokens = 512 },
            "test"), log.Add);

        double first = double.Parse(log.First(l => l.StartsWith("step 1/")).Split("loss ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        double last = double.Parse(log.Last(l => l.StartsWith("step ")).Split("loss ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(last < first - 0.5, $"loss {first} -> {last}");
        // Measured: 515.9 against 608.8 for the unigram model; an untrained or non-learning model stays near the
        // vocabulary size (4001) or above it (6151 after 12 steps).
        Assert.True(result.HeldOutPerplexity < result.UnigramPerplexity, $"held-out perplexity {result.HeldOutPerplexity:F1}, unigram {result.UnigramPerplexity:F1}");

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "training.json")));
        Assert.Equal(60, doc.RootElement.GetProperty("steps").GetInt32());
        using var ckpt = HymbaCheckpoint.Open(output);
        Assert.Equal(4001, ckpt.Config.VocabSize);
        Assert.Equal(HymbaTools.Checkpoints.SafetensorsDType.BF16, ckpt.Get(HymbaTensorCatalog.EmbedTokens).DType);
        using var runner = new ReferenceRunner(HymbaModel.Load(new CheckpointTensorSource(ckpt)), output);
        Assert.True(Verifier.SelfCheck(runner, 1e-4).Passed);
    }
}
