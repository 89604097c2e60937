using HymbaTools.Model;
using System.Diagnostics;
using HymbaTools.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace HymbaTools.Synthetic;

internal sealed record TrainingResult(double FinalTrainLoss, double HeldOutPerplexity, double UnigramPerplexity, TimeSpan Duration, int Steps, long TokensSeen);

/// <summary>
/// Trains a Hymba model from its initial weights with the reference forward pass itself (the torch-op scan
/// keeps it differentiable): next-token cross entropy on random windows of the training tokens, AdamW,
/// warm-up + cosine schedule, gradient clipping. Deterministic for a seed on one machine.
/// </summary>
internal sealed class HymbaTrainer : IDisposable
{
    private readonly Dictionary<string, Parameter> _parameters = new(StringComparer.Ordinal);

    public HymbaTrainer(IHymbaTensorSource initial)
    {
        Config = initial.Config;
        foreach (var t in HymbaTensorCatalog.For(Config))
        {
            var data = TorchMemory.Create(t.Shape, span => initial.CopyToFloat32(t.Name, span));
            _parameters[t.Name] = new Parameter(data, requires_grad: true);
        }
    }

    public HymbaConfig Config { get; }

    public TrainingResult Train(IReadOnlyList<long> trainTokens, IReadOnlyList<long> heldOutTokens, TrainingOptions options, Action<string>? log = null)
    {
        torch.manual_seed((long)(options.Seed & 0x7fffffff));
        var rng = new Random((int)(options.Seed & 0x7fffffff));
        // No weight decay on gains, biases, meta tokens or SSM state parameters (1-D tensors and A_log).
        var decayed = _parameters.Where(kv => kv.Value.dim() == 2 && !kv.Key.EndsWith("A_log.0", StringComparison.Ordinal)).Select(kv => kv.Value).ToList();
        var rest = _parameters.Values.Except(decayed).ToList();
        using var optimizer = torch.optim.AdamW(
            [new AdamW.ParamGroup(decayed, new AdamW.Options { weight_decay = options.WeightDecay }),
             new AdamW.ParamGroup(rest, new AdamW.Options { weight_decay = 0 })],
            lr: options.LearningRate, beta1: 0.9, beta2: 0.95);
        var clock = Stopwatch.StartNew();
        double lastLoss = double.NaN, smoothed = double.NaN;
        long tokensSeen = 0;
        int length = options.SequenceLength + 1;
        var forward = new ForwardOptions { Differentiable = true };
        for (int step = 0; step < options.Steps; step++)
        {
            double lr = options.LearningRateAt(step);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            var batch = new long[options.BatchSize * length];
            for (int b = 0; b < options.BatchSize; b++)
            {
                int start = rng.Next(trainTokens.Count - length);
                for (int j = 0; j < length; j++) batch[b * length + j] = trainTokens[start + j];
            }
            lastLoss = TorchScalars.WithoutGc(() =>
            {
                using var scope = torch.NewDisposeScope();
                var ids = torch.tensor(batch, [options.BatchSize, length]);
                var inputs = ids[.., ..^1];
                var targets = ids[.., 1..];
                optimizer.zero_grad();
                using var weights = HymbaWeights.FromTensors(Config, _parameters.ToDictionary(kv => kv.Key, kv => (Tensor)kv.Value));
                using var model = new HymbaModel(weights);
                using var cache = model.NewCache(options.BatchSize);
                var logits = model.Logits(inputs, cache, forward);
                var loss = F.cross_entropy(logits.reshape(-1, Config.VocabSize), targets.reshape(-1));
                loss.backward();
                torch.nn.utils.clip_grad_norm_(_parameters.Values, options.GradientClip);
                optimizer.step();
                return (double)loss.item<float>();
            }, 512L << 20);
            smoothed = double.IsNaN(smoothed) ? lastLoss : 0.95 * smoothed + 0.05 * lastLoss;
            tokensSeen += (long)options.BatchSize * options.SequenceLength;
            if (log is not null && (step % options.LogEvery == 0 || step == options.Steps - 1))
                log($"step {step + 1}/{options.Steps}  loss {lastLoss:F4} (avg {smoothed:F4})  lr {lr:E2}  {clock.Elapsed:hh\\:mm\\:ss}");
        }
        double perplexity = HeldOutPerplexity(heldOutTokens.Take(options.EvaluationTokens).ToList(), options.SequenceLength);
        double unigram = UnigramPerplexity(trainTokens, heldOutTokens.Take(options.EvaluationTokens).ToList(), Config.VocabSize);
        log?.Invoke($"held-out perplexity {perplexity:F2} (unigram model: {unigram:F2}) after {clock.Elapsed:hh\\:mm\\:ss}");
        return new TrainingResult(smoothed, perplexity, unigram, clock.Elapsed, options.Steps, tokensSeen);
    }

    /// <summary>exp(mean next-token NLL) over consecutive windows of the held-out tokens (each window a fresh sequence with meta tokens).</summary>
    public double HeldOutPerplexity(IReadOnlyList<long> tokens, int window)
    {
        using var _ = torch.no_grad();
        using var weights = HymbaWeights.FromTensors(Config, _parameters.ToDictionary(kv => kv.Key, kv => (Tensor)kv.Value));
        using var model = new HymbaModel(weights);
        return Perplexity(model, tokens, window);
    }

    public static double Perplexity(HymbaModel model, IReadOnlyList<long> tokens, int window)
    {
        double nll = 0;
        long count = 0;
        for (int start = 0; start + window + 1 <= tokens.Count; start += window)
        {
            var chunk = tokens.Skip(start).Take(window + 1).ToArray();
            var logits = model.Forward([chunk[..^1]]);
            for (int t = 0; t < window; t++)
            {
                var row = logits.Row(0, t);
                float max = float.NegativeInfinity;
                foreach (float v in row) max = Math.Max(max, v);
                double sum = 0;
                foreach (float v in row) sum += Math.Exp(v - max);
                nll += Math.Log(sum) + max - row[(int)chunk[t + 1]];
                count++;
            }
        }
        return Math.Exp(nll / Math.Max(1, count));
    }

    /// <summary>Perplexity of an add-one-smoothed unigram model fitted on the training tokens (the baseline).</summary>
    public static double UnigramPerplexity(IReadOnlyList<long> train, IReadOnlyList<long> heldOut, int vocab)
    {
        var counts = new double[vocab];
        foreach (long t in train) counts[t]++;
        double total = train.Count + vocab;
        double nll = heldOut.Skip(1).Sum(t => -Math.Log((counts[t] + 1) / total));
        return Math.Exp(nll / Math.Max(1, heldOut.Count - 1));
    }

    /// <summary>Saves the parameters as a HuggingFace checkpoint (config.json of the initial model, one bf16 safetensors file).</summary>
    public void Save(string directory, string configText, SafetensorsDType dtype)
    {
        Directory.CreateDirectory(directory);
        var entries = HymbaTensorCatalog.For(Config).Select(t => new SafetensorsEntry(t.Name, dtype, t.Shape)).ToList();
        SafetensorsWriter.Write(Path.Combine(directory, CheckpointDirectory.SingleFileName), entries, new Dictionary<string, string> { ["format"] = "pt" }, (e, stream) =>
        {
            using var detached = _parameters[e.Name].detach().contiguous();
            var values = TorchMemory.ToArray(detached);
            var bytes = new byte[e.ByteLength];
            FloatEncoding.Encode(values, bytes, dtype);
            stream.Write(bytes);
        });
        Common.AtomicFile.WriteAllText(Path.Combine(directory, CheckpointDirectory.ConfigFileName), configText);
    }

    public void Dispose()
    {
        foreach (var p in _parameters.Values) p.Dispose();
    }
}
