using System.Diagnostics;
using System.Globalization;

namespace HymbaTools.Cli;

/// <summary>
/// Runs a command as its own process and measures what only a whole process shows: wall time and peak resident
/// memory (the kernel's high-water mark, file-backed pages included, which is what `/usr/bin/time -v`, container
/// limits and users see). `hymba` children report their own peak through <see cref="PeakMemoryFileVariable"/>; for
/// other programs the kernel's high-water mark (VmHWM) is read every few milliseconds while they run, so only growth
/// in their last milliseconds could be missed.
/// </summary>
internal static class ChildProcess
{
    /// <summary>When set, `hymba` writes its peak resident bytes (VmHWM) to this file as it exits.</summary>
    public const string PeakMemoryFileVariable = "HYMBA_PEAK_RSS_FILE";

    public sealed record Run(int ExitCode, TimeSpan Wall, long? PeakResidentBytes, string Stderr)
    {
        /// <summary>What the program printed (kept for programs whose output is their result, such as llama-bench's JSON).</summary>
        public string Stdout { get; init; } = "";
    }

    /// <summary>This process's peak resident set in bytes, from /proc/self/status; null where that is unavailable.</summary>
    public static long? PeakResidentBytes()
    {
        const string path = "/proc/self/status";
        return File.Exists(path) ? ParseHighWaterMark(File.ReadLines(path)) : null;
    }

    /// <summary>Called as `hymba` exits: writes the peak when a parent asked for it.</summary>
    public static void ReportPeakIfRequested()
    {
        if (Environment.GetEnvironmentVariable(PeakMemoryFileVariable) is not { Length: > 0 } file) return;
        if (PeakResidentBytes() is { } peak) File.WriteAllText(file, peak.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Starts `hymba` itself with <paramref name="args"/> (the app host when this is one, else `dotnet hymba.dll`).</summary>
    public static Run Hymba(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        string? host = Environment.ProcessPath;
        var info = host is not null && Path.GetFileNameWithoutExtension(host) == "hymba"
            ? new ProcessStartInfo(host)
            : new ProcessStartInfo("dotnet") { ArgumentList = { Path.Combine(AppContext.BaseDirectory, "hymba.dll") } };   // a single-file app has no assembly path
        foreach (string a in args) info.ArgumentList.Add(a);
        string peakFile = Path.Combine(Path.GetTempPath(), $"hymba-peak-{Environment.ProcessId}-{Guid.NewGuid():N}");
        info.Environment[PeakMemoryFileVariable] = peakFile;
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        try
        {
            var run = Start(info);
            long? peak = File.Exists(peakFile) && long.TryParse(File.ReadAllText(peakFile), NumberStyles.None, CultureInfo.InvariantCulture, out long p) ? p : null;
            return run with { PeakResidentBytes = peak ?? run.PeakResidentBytes };
        }
        finally
        {
            File.Delete(peakFile);
        }
    }

    /// <summary>Runs any program to completion (stdout and stderr kept).</summary>
    public static Run Start(ProcessStartInfo info)
    {
        info.UseShellExecute = false;
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {info.FileName}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        long? peak = null;
        string status = $"/proc/{process.Id}/status";
        while (!process.WaitForExit(5))
        {
            peak = ReadHighWaterMark(status) ?? peak;
            if (!HymbaTools.Common.Interruption.IsRequested) continue;
            // An interrupt of this process stops the child too (a SIGTERM reaches only us), before our temporaries go.
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { /* exited meanwhile */ }
            process.WaitForExit();
            HymbaTools.Common.Interruption.ThrowIfRequested();
        }
        clock.Stop();
        stdout.Wait();
        return new Run(process.ExitCode, clock.Elapsed, peak, stderr.Result) { Stdout = stdout.Result };
    }

    private static long? ReadHighWaterMark(string statusPath)
    {
        try { return ParseHighWaterMark(File.ReadLines(statusPath)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }   // exited meanwhile
    }

    private static long? ParseHighWaterMark(IEnumerable<string> lines)
    {
        foreach (string line in lines)
        {
            if (!line.StartsWith("VmHWM:", StringComparison.Ordinal)) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return parts.Length >= 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long kb) ? kb * 1024 : null;
        }
        return null;
    }
}
