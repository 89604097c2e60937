using HymbaTools.Common;
using System.Diagnostics;
using System.Globalization;
using HymbaTools.Quantization;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Benchmarks;

/// <summary>
/// Quantize throughput per ggml type in MB/s of float32 input: the production path (TensorQuantizer: row
/// chunks, rows in parallel, no allocation per block) against the plain baseline measured in the same run
/// (the same codec called row after row on one thread). Medians over repeats after a warm-up.
/// </summary>
internal static class QuantizationBenchmark
{
    public sealed record Row(GgmlType Type, double BaselineMBps, double ProductionMBps)
    {
        public double Speedup => ProductionMBps / BaselineMBps;
    }

    public static IReadOnlyList<Row> Run(int rows, int cols, int repeats, Action<string>? log = null)
    {
        var rng = new Random(3);
        var matrix = new float[(long)rows * cols];
        for (long i = 0; i < matrix.LongLength; i++) matrix[i] = (float)((rng.NextDouble() * 2 - 1) * Math.Exp(rng.NextDouble() * 4 - 2));
        double megabytes = matrix.LongLength * 4 / 1e6;
        var result = new List<Row>();
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.F16, GgmlType.BF16 })
        {
            var format = BlockFormatRegistry.Get(type);
            int rowBytes = (int)GgmlTypes.RowBytes(type, cols);
            var output = new byte[(long)rows * rowBytes];
            double Baseline()
            {
                var sw = Stopwatch.StartNew();
                for (int r = 0; r < rows; r++) format.QuantizeRow(matrix.AsSpan(r * cols, cols), output.AsSpan(r * rowBytes, rowBytes), default);
                return sw.Elapsed.TotalSeconds;
            }
            double Production()
            {
                using var sink = new MemoryStream(output.Length);
                var sw = Stopwatch.StartNew();
                TensorQuantizer.Quantize(type, rows, cols, (first, count, dst) => matrix.AsSpan((int)(first * cols), count * cols).CopyTo(dst), null, sink);
                return sw.Elapsed.TotalSeconds;
            }
            log?.Invoke($"{GgmlTypes.NameOf(type)} x {repeats + 1}");
            double baseline = Median(Measure(Baseline, repeats)), production = Median(Measure(Production, repeats));
            result.Add(new Row(type, megabytes / baseline, megabytes / production));
        }
        return result;
    }

    public static string ToText(IReadOnlyList<Row> rows, int matrixRows, int cols)
    {
        var t = new TextTable("type", "baseline MB/s", "production MB/s", "speedup");
        foreach (var r in rows)
            t.Add(GgmlTypes.NameOf(r.Type), r.BaselineMBps.ToString("F1", CultureInfo.InvariantCulture), r.ProductionMBps.ToString("F1", CultureInfo.InvariantCulture),
                r.Speedup.ToString("F2", CultureInfo.InvariantCulture) + "x");
        return $"quantize throughput on a {matrixRows} x {cols} float32 matrix ({matrixRows * (long)cols * 4 / 1e6:F1} MB), {Environment.ProcessorCount} cores; " +
               "baseline = the same codec row after row on one thread\n" + t;
    }

    private static List<double> Measure(Func<double> f, int repeats)
    {
        f();
        return Enumerable.Range(0, repeats).Select(_ => f()).ToList();
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
