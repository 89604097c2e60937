using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace HymbaTools.Common;

/// <summary>
/// Names and tracks the temporary files and directories that outputs are written to before they are renamed into
/// place: <c>.{name}.{pid}.{guid}.partial</c> beside the destination. Live ones are registered so that a signal
/// handler can delete them (<see cref="DeleteAll"/>); ones left by a process that no longer runs (a SIGKILL, a power
/// cut) are removed by the next write to the same destination.
/// </summary>
internal static class TemporaryPaths
{
    private const string Suffix = ".partial";
    private static readonly ConcurrentDictionary<string, bool> Live = new(StringComparer.Ordinal);

    /// <summary>A new temporary path beside <paramref name="destination"/>, registered until <see cref="Release"/>.</summary>
    public static string Beside(string destination)
    {
        string full = Path.GetFullPath(destination);
        string directory = Path.GetDirectoryName(full)!;
        RemoveStale(directory, Path.GetFileName(full));
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}.{Guid.NewGuid():N}{Suffix}");
        Live[temporary] = true;
        return temporary;
    }

    /// <summary>Stops tracking a temporary path (it was renamed into place or deleted).</summary>
    public static void Release(string temporary) => Live.TryRemove(temporary, out _);

    /// <summary>Deletes a temporary file or directory, ignoring what is already gone, and stops tracking it.</summary>
    public static void Delete(string temporary)
    {
        try
        {
            if (Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true);
            else File.Delete(temporary);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        Release(temporary);
    }

    /// <summary>Deletes every live temporary path of this process (interrupts: SIGINT, SIGTERM).</summary>
    public static void DeleteAll()
    {
        foreach (var path in Live.Keys) Delete(path);
    }

    /// <summary>
    /// Removes the temporaries that runs which no longer live left beside <paramref name="destination"/> (a SIGKILL,
    /// a power cut). Called when a command checks its destination, before the work, and again when it writes.
    /// </summary>
    public static void RemoveStaleBeside(string destination)
    {
        string full = Path.GetFullPath(destination.TrimEnd('/'));
        RemoveStale(Path.GetDirectoryName(full)!, Path.GetFileName(full));
    }

    /// <summary>Removes <c>.{name}.{pid}.*.partial</c> left beside the destination by processes that are gone.</summary>
    private static void RemoveStale(string directory, string name)
    {
        if (!Directory.Exists(directory)) return;
        string prefix = $".{name}.";
        IEnumerable<string> entries;
        try { entries = Directory.EnumerateFileSystemEntries(directory, $".{name}.*{Suffix}").ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        foreach (var entry in entries)
        {
            var parts = Path.GetFileName(entry)[prefix.Length..].Split('.');
            if (parts.Length != 3 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            DateTime lastWrite;
            try { lastWrite = Directory.Exists(entry) ? Directory.GetLastWriteTimeUtc(entry) : File.GetLastWriteTimeUtc(entry); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            if (!WriterMayBeAlive(pid, lastWrite)) Delete(entry);
        }
    }

    /// <summary>How much later than a temporary's last write its writer may seem to have started (the kernel's start time is in clock ticks).</summary>
    private static readonly TimeSpan StartTimeSlack = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Whether process <paramref name="pid"/> may still be writing a temporary last written at <paramref name="lastWriteUtc"/>.
    /// Not when no such process runs, when it is a zombie (killed, not yet reaped by its parent: it exists, but
    /// holds no file and writes nothing more), or when it started after the temporary was written (its pid was reused).
    /// </summary>
    internal static bool WriterMayBeAlive(int pid, DateTime lastWriteUtc)
    {
        if (pid == Environment.ProcessId) return true;
        if (pid <= 0) return false;
        if (OperatingSystem.IsLinux() && ProcessState(pid) is { } state && state is 'Z' or 'X' or 'x') return false;
        try
        {
            using var process = Process.GetProcessById(pid);
            if (process.HasExited) return false;
            return process.StartTime.ToUniversalTime() <= lastWriteUtc + StartTimeSlack;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
        catch (System.ComponentModel.Win32Exception) { return true; }   // it exists, but cannot be looked at: leave its files alone
    }

    /// <summary>The state letter of /proc/PID/stat (R, S, D, Z, ...); null when the process is gone or the file unreadable.</summary>
    private static char? ProcessState(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            // "pid (comm) S ...": the name may hold spaces and parentheses, the state follows the last ')'.
            int close = stat.LastIndexOf(')');
            return close >= 0 && close + 2 < stat.Length ? stat[close + 2] : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
