namespace HymbaTools.Synthetic;

/// <summary>Hyper-parameters of the example-model recipe (AdamW, linear warm-up then cosine decay, gradient clipping).</summary>
internal sealed record TrainingOptions
{
    public int Steps { get; init; } = 600;
    public int BatchSize { get; init; } = 8;
    /// <summary>Text tokens per training sequence (meta tokens come on top).</summary>
    public int SequenceLength { get; init; } = 256;
    public double LearningRate { get; init; } = 3e-3;
    public double MinLearningRate { get; init; } = 3e-4;
    public int WarmupSteps { get; init; } = 30;
    public double WeightDecay { get; init; } = 0.05;
    public double GradientClip { get; init; } = 1.0;
    public ulong Seed { get; init; } = 1;
    public int LogEvery { get; init; } = 20;
    /// <summary>Held-out tokens used for the perplexity reported during and after training.</summary>
    public int EvaluationTokens { get; init; } = 32768;

    public double LearningRateAt(int step)
    {
        if (step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, Steps - WarmupSteps);
        return MinLearningRate + 0.5 * (LearningRate - MinLearningRate) * (1 + Math.Cos(Math.PI * Math.Min(1, progress)));
    }
}
