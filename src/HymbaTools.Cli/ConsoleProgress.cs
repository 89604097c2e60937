using System.Diagnostics;
using System.Globalization;

namespace HymbaTools.Cli;

/// <summary>
/// Progress on stderr for long work: a line redrawn in place on a terminal, with the done/total in the work's own
/// unit (MB for bytes, or a count such as "windows"). Nothing when stderr is not a terminal (logs and CI get the
/// result, not a ticker), with --quiet, when the command prints JSON, or for work that finishes within a second.
/// </summary>
internal sealed class ConsoleProgress : IProgress<(long Done, long Total)>, IDisposable
{
    private readonly TextWriter _stderr;
    private readonly string _label;
    private readonly string? _countUnit;
    private readonly bool _shown;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _lastPrint = TimeSpan.Zero;
    private bool _printed;
    private static volatile bool _lineOpen;

    /// <summary>A progress line is drawn and not yet ended (a message printed now starts on a new line).</summary>
    public static bool LineOpen => _lineOpen;

    /// <param name="countUnit">null: the values are bytes (shown in MB); otherwise the plural name of what is counted.</param>
    /// <param name="enabled">false for output modes that must stay clean (--json).</param>
    public ConsoleProgress(TextWriter stderr, string label, string? countUnit = null, bool enabled = true)
    {
        _stderr = stderr;
        _label = label;
        _countUnit = countUnit;
        _shown = enabled && stderr is CliErrorWriter { Interactive: true, Quiet: false };
    }

    /// <summary>The text of one progress line; separate so its units can be tested without a terminal.</summary>
    public static string Format(string label, string? countUnit, long done, long total, TimeSpan elapsed)
    {
        var inv = CultureInfo.InvariantCulture;
        double fraction = total > 0 ? (double)done / total : 0;
        string eta = fraction > 0 && fraction < 1 ? string.Create(inv, $", ~{TimeSpan.FromSeconds(elapsed.TotalSeconds * (1 - fraction) / fraction):mm\\:ss} left") : "";
        string amount = countUnit is null
            ? string.Create(inv, $"{done / 1e6:F0} of {total / 1e6:F0} MB")
            : string.Create(inv, $"{done} of {total} {countUnit}");
        return string.Create(inv, $"{label}: {fraction:P0} ({amount}{eta})");
    }

    public void Report((long Done, long Total) value)
    {
        var now = _clock.Elapsed;
        // Nothing is drawn once an interrupt was asked for: the interrupt's line is the last one.
        if (!_shown || HymbaTools.Common.Interruption.IsRequested || now < TimeSpan.FromSeconds(1) || now - _lastPrint < TimeSpan.FromSeconds(0.2)) return;
        _lastPrint = now;
        _stderr.Write("\r" + Format(_label, _countUnit, value.Done, value.Total, now).PadRight(70));
        _printed = true;
        _lineOpen = true;
    }

    public void Complete()
    {
        if (_printed) _stderr.WriteLine();
        _printed = false;
        _lineOpen = false;
    }

    public void Dispose() => Complete();
}
