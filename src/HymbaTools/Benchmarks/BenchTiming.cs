using System.Diagnostics;

namespace HymbaTools.Benchmarks;

/// <summary>Timing shared by the benchmarks: one warm-up, then timed repeats, reported by their median.</summary>
internal static class BenchTiming
{
    public static List<double> Time(int repeats, Action action) => Time(repeats, () => { var sw = Stopwatch.StartNew(); action(); return sw.Elapsed.TotalSeconds; });

    /// <summary>Runs <paramref name="measure"/> once to warm up, then <paramref name="repeats"/> times; each call returns its own seconds.</summary>
    public static List<double> Time(int repeats, Func<double> measure)
    {
        measure();
        return Enumerable.Range(0, repeats).Select(_ => measure()).ToList();
    }

    public static double Median(IReadOnlyCollection<double> values)
    {
        var sorted = values.Order().ToList();
        int n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
