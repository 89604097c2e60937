namespace HymbaTools.Quantization.Calibration;

/// <summary>Calibration token ids cut into equal chunks, each a fresh sequence (as llama-imatrix does).</summary>
public static class CalibrationChunks
{
    public static long[][] Split(IReadOnlyList<long> tokens, int chunkLength, int maxChunks, string option = "--calibration")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkLength, 1);
        int chunks = Math.Min(maxChunks, tokens.Count / chunkLength);
        if (chunks == 0) throw new Common.InvalidRequestException(option, $"{tokens.Count} tokens is less than one chunk of {chunkLength}");
        return [.. Enumerable.Range(0, chunks).Select(c => tokens.Skip(c * chunkLength).Take(chunkLength).ToArray())];
    }
}
