using System.Globalization;
using System.Text.Json;
using HymbaTools.Common;

namespace HymbaTools.Benchmarks;

/// <summary>
/// Where ONNX Runtime spends a step, by operator type: its own profiler's trace (SessionOptions.EnableProfiling, the
/// Chrome trace ORT writes) read back and each node's kernel time summed per op type, separately for the runs of one
/// phase (the first call, decode steps, a long prefill). Kernel time is what the operators take; the rest of a run
/// (feeding inputs, allocating outputs, the executor itself) shows as the gap to the runs' wall time. If/Scan/Loop
/// count as the ops of their bodies.
/// </summary>
internal static class OnnxProfile
{
    /// <summary>Kernel time of one op type in one phase.</summary>
    public sealed record OpTime(string OpType, double Microseconds, int Calls);

    /// <summary>A phase: the runs it covers (0-based in the trace's order), their wall time and the kernel time per op type.</summary>
    public sealed record Phase(string Name, int Runs, double RunMicroseconds, IReadOnlyList<OpTime> Ops)
    {
        public double KernelMicroseconds => Ops.Sum(o => o.Microseconds);
    }

    /// <summary>Ops whose time is their subgraph's: the trace holds every body node too, so counting these would count it twice.</summary>
    private static readonly HashSet<string> ControlFlow = new(["If", "Scan", "Loop"], StringComparer.Ordinal);

    /// <summary>
    /// Reads a trace and splits its runs into phases by index ranges (e.g. run 0 = first call, 1..32 = decode); nodes
    /// named in <paramref name="labels"/> are counted under that label instead of their op type.
    /// </summary>
    public static IReadOnlyList<Phase> Read(string tracePath, IReadOnlyList<(string Name, Range Runs)> phases, IReadOnlyDictionary<string, string>? labels = null)
    {
        using var stream = File.OpenRead(tracePath);
        using var trace = JsonDocument.Parse(stream);
        var runs = new List<(double Start, double End)>();
        var nodes = new List<(double Start, double Duration, string OpType)>();
        foreach (var e in trace.RootElement.EnumerateArray())
        {
            if (!e.TryGetProperty("name", out var nameValue) || nameValue.GetString() is not { } name) continue;
            double start = e.GetProperty("ts").GetDouble(), duration = e.GetProperty("dur").GetDouble();
            string category = e.TryGetProperty("cat", out var cat) ? cat.GetString() ?? "" : "";
            if (category == "Session" && name == "model_run") runs.Add((start, start + duration));
            else if (category == "Node" && name.EndsWith("_kernel_time", StringComparison.Ordinal)
                     && e.TryGetProperty("args", out var args) && args.TryGetProperty("op_name", out var op)
                     && op.GetString() is { } opType && !ControlFlow.Contains(opType))
                nodes.Add((start, duration, labels?.GetValueOrDefault(name[..^"_kernel_time".Length]) ?? opType));
        }
        runs.Sort();
        var result = new List<Phase>();
        foreach (var (phaseName, range) in phases)
        {
            var (offset, length) = range.GetOffsetAndLength(runs.Count);
            var inPhase = runs.GetRange(offset, length);
            var ops = nodes.Where(n => inPhase.Any(r => n.Start >= r.Start && n.Start < r.End))
                .GroupBy(n => n.OpType, StringComparer.Ordinal)
                .Select(g => new OpTime(g.Key, g.Sum(n => n.Duration), g.Count()))
                .OrderByDescending(o => o.Microseconds).ThenBy(o => o.OpType, StringComparer.Ordinal).ToList();
            result.Add(new Phase(phaseName, length, inPhase.Sum(r => r.End - r.Start), ops));
        }
        return result;
    }

    /// <summary>
    /// Labels that split MatMulNBits by weight width ("MatMulNBits 8-bit": the tied head and x_proj/dt_proj of an int4
    /// export), from the graph's node names and bits attributes (the names the profiler reports).
    /// </summary>
    public static IReadOnlyDictionary<string, string> MatMulNBitsWidths(string modelPath)
    {
        using var stream = File.OpenRead(modelPath);
        var graph = Formats.Onnx.Protos.ModelProto.Parser.ParseFrom(stream).Graph;
        return graph.Node.Where(n => n.OpType == "MatMulNBits")
            .ToDictionary(n => n.Name, n => $"MatMulNBits {n.Attribute.FirstOrDefault(a => a.Name == "bits")?.I ?? 0}-bit", StringComparer.Ordinal);
    }

    /// <summary>Share of kernel time per op type, phases side by side; rows under 0.5 % in every phase folded into one.</summary>
    public static string Table(IReadOnlyList<Phase> phases)
    {
        var inv = CultureInfo.InvariantCulture;
        var table = new TextTable(["op type", .. phases.Select(p => $"{p.Name}: share"), .. phases.Select(p => $"{p.Name}: ms/run")]);
        double Share(Phase p, string op) => p.KernelMicroseconds > 0 ? (p.Ops.FirstOrDefault(o => o.OpType == op)?.Microseconds ?? 0) / p.KernelMicroseconds : 0;
        var opTypes = phases.SelectMany(p => p.Ops.Select(o => o.OpType)).Distinct(StringComparer.Ordinal)
            .OrderByDescending(op => phases.Max(p => Share(p, op))).ThenBy(op => op, StringComparer.Ordinal).ToList();
        var shown = opTypes.Where(op => phases.Any(p => Share(p, op) >= 0.005)).ToList();
        string Cell(Phase p, IEnumerable<string> ops) => (ops.Sum(op => Share(p, op)) * 100).ToString("F1", inv) + " %";
        string Ms(Phase p, IEnumerable<string> ops) => (ops.Sum(op => p.Ops.FirstOrDefault(o => o.OpType == op)?.Microseconds ?? 0) / 1000 / Math.Max(1, p.Runs)).ToString("F2", inv);
        foreach (var op in shown) table.Add([op, .. phases.Select(p => Cell(p, [op])), .. phases.Select(p => Ms(p, [op]))]);
        var rest = opTypes.Except(shown).ToList();
        if (rest.Count > 0) table.Add([$"{rest.Count} other op types", .. phases.Select(p => Cell(p, rest)), .. phases.Select(p => Ms(p, rest))]);
        table.Add(["kernels, all", .. phases.Select(_ => "100 %"), .. phases.Select(p => (p.KernelMicroseconds / 1000 / Math.Max(1, p.Runs)).ToString("F2", inv))]);
        table.Add(["run wall time", .. phases.Select(p => p.RunMicroseconds > 0 ? (p.KernelMicroseconds / p.RunMicroseconds * 100).ToString("F0", inv) + " % in kernels" : "-"),
            .. phases.Select(p => (p.RunMicroseconds / 1000 / Math.Max(1, p.Runs)).ToString("F2", inv))]);
        return table.ToString();
    }
}
