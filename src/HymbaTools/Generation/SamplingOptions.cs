namespace HymbaTools.Generation;

/// <summary>How the next token is chosen: greedy when Temperature is 0, else top-k / top-p sampling of softmax(logits / T).</summary>
public sealed record SamplingOptions
{
    public double Temperature { get; init; } = 0.8;
    /// <summary>Keep the K most likely tokens (0 = all).</summary>
    public int TopK { get; init; } = 40;
    /// <summary>Keep the smallest set of tokens whose probability reaches P (1 = all).</summary>
    public double TopP { get; init; } = 0.95;
    public int Seed { get; init; }
}
