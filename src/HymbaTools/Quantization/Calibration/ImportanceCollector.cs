using HymbaTools.Model;

namespace HymbaTools.Quantization.Calibration;

/// <summary>
/// Calibration: runs the reference forward over a token stream in fixed-length chunks (each a fresh
/// sequence, as llama-imatrix does) and accumulates the mean squared activation entering each linear weight.
/// </summary>
internal static class ImportanceCollector
{
    public static ImportanceMatrix Collect(HymbaModel model, IReadOnlyList<long> tokens, int chunkLength, int maxChunks, string dataset,
        IProgress<(long Done, long Total)>? progress = null, string modelName = "")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkLength, 1);
        int chunks = Math.Min(maxChunks, tokens.Count / chunkLength);
        if (chunks == 0) throw new Common.InvalidRequestException("--text", $"{tokens.Count} tokens is less than one chunk of {chunkLength}");
        var statistics = new ActivationStatistics();
        var options = new ForwardOptions { Recorder = statistics };
        for (int c = 0; c < chunks; c++)
        {
            var chunk = tokens.Skip(c * chunkLength).Take(chunkLength).ToArray();
            model.Forward([chunk], options);
            statistics.Chunks++;
            progress?.Report((c + 1, chunks));
        }
        return ImportanceMatrix.FromStatistics(model.Config, statistics, dataset, (long)chunks * chunkLength, modelName);
    }
}
