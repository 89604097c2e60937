using System.Diagnostics;
using System.Globalization;

namespace HymbaTools.Quantization.Gptq;

/// <summary>The steps of a GPTQ layer whose time is reported.</summary>
internal enum GptqStep { Hessians, Factors, Sweeps, RoundedPass }

/// <summary>
/// Wall and process CPU seconds of each step of a GPTQ walk, over all layers and for the current one. CPU time shows
/// the work itself when the machine is shared (wall time then depends on the other processes).
/// </summary>
internal sealed class GptqStepTimes
{
    private static readonly string[] Names = ["calibration pass + Hessians", "factors", "sweeps", "pass through the rounded layer"];
    private readonly (double Wall, double Cpu)[] _total = new (double, double)[Names.Length], _layer = new (double, double)[Names.Length];

    public int Layers { get; set; }

    public readonly record struct Clock(long Started, TimeSpan Cpu)
    {
        public double WallSeconds => Stopwatch.GetElapsedTime(Started).TotalSeconds;
        public double CpuSeconds => (Process.GetCurrentProcess().TotalProcessorTime - Cpu).TotalSeconds;
    }

    public static Clock Start() => new(Stopwatch.GetTimestamp(), Process.GetCurrentProcess().TotalProcessorTime);

    public void BeginLayer() => Array.Clear(_layer);

    public void Add(GptqStep step, Clock clock)
    {
        double wall = clock.WallSeconds, cpu = clock.CpuSeconds;
        _layer[(int)step].Wall += wall;
        _layer[(int)step].Cpu += cpu;
        _total[(int)step].Wall += wall;
        _total[(int)step].Cpu += cpu;
    }

    /// <summary>The current layer's steps.</summary>
    public string Layer() => Format(_layer);

    /// <summary>Every layer's steps summed.</summary>
    public override string ToString() => Format(_total);

    private static string Format((double Wall, double Cpu)[] times) =>
        string.Join(", ", times.Select((t, i) => string.Create(CultureInfo.InvariantCulture, $"{Names[i]} {t.Wall:F1} s (CPU {t.Cpu:F1} s)")));
}
