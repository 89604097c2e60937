namespace HymbaTools.Generation;

/// <summary>Picks the next token from a row of logits (deterministic for a seed).</summary>
internal sealed class TokenSampler(SamplingOptions options)
{
    private readonly Random _random = new(options.Seed);

    public int Next(ReadOnlySpan<float> logits)
    {
        if (options.Temperature <= 0)
        {
            int best = 0;
            for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
            return best;
        }
        var order = Enumerable.Range(0, logits.Length).ToArray();
        var values = logits.ToArray();
        Array.Sort(values.Select(v => -v).ToArray(), order); // by descending logit, ties by index
        int keep = options.TopK > 0 ? Math.Min(options.TopK, order.Length) : order.Length;
        double max = logits[order[0]];
        var probabilities = new double[keep];
        double total = 0;
        for (int i = 0; i < keep; i++)
        {
            probabilities[i] = Math.Exp((logits[order[i]] - max) / options.Temperature);
            total += probabilities[i];
        }
        double cumulative = 0;
        int cut = keep;
        for (int i = 0; i < keep; i++)
        {
            cumulative += probabilities[i] / total;
            if (cumulative >= options.TopP) { cut = i + 1; break; }
        }
        double draw = _random.NextDouble() * probabilities.Take(cut).Sum();
        for (int i = 0; i < cut; i++)
        {
            draw -= probabilities[i];
            if (draw <= 0) return order[i];
        }
        return order[cut - 1];
    }
}
