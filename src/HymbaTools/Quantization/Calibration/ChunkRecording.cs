using HymbaTools.Model;

namespace HymbaTools.Quantization.Calibration;

/// <summary>
/// What a layer's pass over the calibration chunks records: one recorder per chunk (chunks run on worker threads),
/// combined in chunk order so the result does not depend on the thread count.
/// </summary>
internal abstract class ChunkRecording
{
    /// <summary>The recorder of one chunk's pass (called on the worker thread that runs the chunk).</summary>
    public abstract IActivationRecorder For(int chunk);

    /// <summary>A chunk's pass failed or was interrupted: recorders waiting for it must stop waiting.</summary>
    public virtual void Abandon() { }

    /// <summary>Every chunk's pass has ended (on the caller's thread).</summary>
    public virtual void Complete() { }
}

/// <summary>Importance statistics (mean squared input per column): each chunk's own sums, merged in chunk order when the pass ends.</summary>
internal sealed class ImportanceRecording(ActivationStatistics total, int chunks) : ChunkRecording
{
    private readonly ActivationStatistics[] _perChunk = [.. Enumerable.Range(0, chunks).Select(_ => new ActivationStatistics())];

    public override IActivationRecorder For(int chunk) => _perChunk[chunk];

    public override void Complete()
    {
        foreach (var recorded in _perChunk) total.Merge(recorded);
    }
}
