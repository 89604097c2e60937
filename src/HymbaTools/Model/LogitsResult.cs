namespace HymbaTools.Model;

/// <summary>Logits of a forward pass as plain floats, [Batch, Tokens, Vocab] row-major; no torch types leak out of Model/.</summary>
public sealed record LogitsResult(float[] Data, int Batch, int Tokens, int Vocab)
{
    public ReadOnlySpan<float> Row(int batch, int token) => Data.AsSpan(((batch * Tokens) + token) * Vocab, Vocab);

    public int ArgMax(int batch, int token)
    {
        var row = Row(batch, token);
        int best = 0;
        for (int i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
        return best;
    }
}
