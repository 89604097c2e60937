namespace HymbaTools.Common;

/// <summary>
/// Progress of one of several equal parts of a piece of work, reported to the whole: part <c>index</c>'s
/// (done, total) becomes its share of count x unit, where unit is the whole's measure of one part (bytes, say)
/// or, when not given, the part's own total (parts that count the same things, such as windows).
/// </summary>
internal sealed class ProgressPart(IProgress<(long Done, long Total)> whole, int index, int count, long? unit) : IProgress<(long Done, long Total)>
{
    public void Report((long Done, long Total) value)
    {
        long size = unit ?? value.Total;
        long done = unit is null ? value.Done : value.Total > 0 ? size * value.Done / value.Total : 0;
        whole.Report((index * size + done, count * size));
    }

    /// <summary>The part, or null when nobody listens.</summary>
    public static IProgress<(long Done, long Total)>? Of(IProgress<(long Done, long Total)>? whole, int index, int count, long? unit = null) =>
        whole is null ? null : new ProgressPart(whole, index, count, unit);
}
