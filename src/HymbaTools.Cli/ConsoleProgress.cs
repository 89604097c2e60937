using System.Diagnostics;

namespace HymbaTools.Cli;

/// <summary>
/// Progress on stderr for long work: a redrawn line on a terminal, a line every few seconds in a log
/// (CI), nothing at all for work that finishes quickly.
/// </summary>
internal sealed class ConsoleProgress(TextWriter stderr, string label) : IProgress<(long Done, long Total)>, IDisposable
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _interactive = stderr is CliErrorWriter { Interactive: true };
    private readonly bool _silent = stderr is CliErrorWriter { Quiet: true };
    private TimeSpan _lastPrint = TimeSpan.Zero;
    private bool _printed;

    public void Report((long Done, long Total) value)
    {
        var now = _clock.Elapsed;
        if (_silent || now < TimeSpan.FromSeconds(1) || now - _lastPrint < TimeSpan.FromSeconds(_interactive ? 0.2 : 5)) return;
        _lastPrint = now;
        double fraction = value.Total > 0 ? (double)value.Done / value.Total : 0;
        string eta = fraction > 0 ? $", ~{TimeSpan.FromSeconds(now.TotalSeconds * (1 - fraction) / fraction):mm\\:ss} left" : "";
        string line = $"{label}: {fraction:P0} ({value.Done / 1e6:F0} of {value.Total / 1e6:F0} MB{eta})";
        if (_interactive) stderr.Write("\r" + line.PadRight(70));
        else stderr.WriteLine(line);
        _printed = true;
    }

    public void Complete()
    {
        if (_printed && _interactive) stderr.WriteLine();
        _printed = false;
    }

    public void Dispose() => Complete();
}
