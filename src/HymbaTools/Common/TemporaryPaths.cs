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
            if (parts.Length != 3 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || IsRunning(pid)) continue;
            Delete(entry);
        }
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}
