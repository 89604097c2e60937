namespace HymbaTools.Common;

/// <summary>
/// Checks an output destination before any work starts (so a typo fails in a second, not after an hour of
/// quantizing) and writes directories the way <see cref="AtomicFile"/> writes files: into a temporary sibling,
/// renamed into place when complete.
/// </summary>
internal static class OutputPaths
{
    /// <summary>A file destination: not a directory, in a directory that exists and can be written.</summary>
    public static string CheckFile(string path, string option)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new InvalidRequestException(option, $"{full} is a directory (expected a file to write)");
        CheckParent(full, option);
        return full;
    }

    /// <summary>A directory destination: not a file, in a directory that exists; an existing one must be empty unless <paramref name="force"/>.</summary>
    public static string CheckDirectory(string path, string option, bool force)
    {
        string full = Path.GetFullPath(path.TrimEnd('/'));
        if (File.Exists(full)) throw new InvalidRequestException(option, $"{full} is a file (expected a directory to create)");
        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any() && !force)
            throw new InvalidRequestException(option, $"{full} is not empty (use --force to replace it)");
        CheckParent(full, option);
        return full;
    }

    private static void CheckParent(string full, string option)
    {
        string parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent)) throw new InvalidRequestException(option, $"{parent} does not exist (create it first)");
        string probe = Path.Combine(parent, $".hymba-write-probe.{Environment.ProcessId}.{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidRequestException(option, $"{parent} is not writable ({e.Message})");
        }
    }

    /// <summary>
    /// Fills a temporary directory beside <paramref name="destination"/> and renames it into place; an existing
    /// destination (allowed only with <paramref name="force"/>) is moved aside first and removed afterwards, so the
    /// destination is always either the complete old output or the complete new one.
    /// </summary>
    public static void WriteDirectory(string destination, bool force, Action<string> write)
    {
        string full = CheckDirectory(destination, "-o", force);
        string temporary = TemporaryPaths.Beside(full);
        Directory.CreateDirectory(temporary);
        try
        {
            write(temporary);
            if (Directory.Exists(full))
            {
                string old = TemporaryPaths.Beside(full);
                Directory.Move(full, old);
                Directory.Move(temporary, full);
                TemporaryPaths.Delete(old);
            }
            else Directory.Move(temporary, full);
            TemporaryPaths.Release(temporary);
        }
        catch
        {
            TemporaryPaths.Delete(temporary);
            throw;
        }
    }
}
