namespace HymbaTools.Model;

/// <summary>Logits of a forward pass as plain floats, [Batch, Tokens, Vocab] row-major; no torch types leak out of Model/.</summary>
public sealed record LogitsResult(float[] Data, int Batch, int Tokens, int Vocab)
{
    /// <summary>Every decoder layer's input and the final normalised hidden states, when the forward was asked to capture them.</summary>
    public IReadOnlyList<float[]>? HiddenStates { get; init; }

    public ReadOnlySpan<float> Row(int batch, int token) => Data.AsSpan(((batch * Tokens) + token) * Vocab, Vocab);

    public int ArgMax(int batch, int token)
    {
        var row = Row(batch, token);
        int best = 0;
        for (int i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
        return best;
    }
}
