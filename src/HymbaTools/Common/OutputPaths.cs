namespace HymbaTools.Common;

/// <summary>
/// Checks an output destination before any work starts (so a typo fails in a second, not after an hour of
/// quantizing) and writes directories the way <see cref="AtomicFile"/> writes files: into a temporary sibling,
/// renamed into place when complete.
/// </summary>
internal static class OutputPaths
{
    /// <summary>A file destination: not a directory, in a directory that exists and can be written.</summary>
    public static string CheckFile(string path, string option) => CheckFile(path, option, force: false, kind: null);

    /// <summary>
    /// A file destination: not a directory, in a directory that exists and can be written; with a <paramref name="kind"/>,
    /// an existing file is replaced only when it is a previous output of that kind or with <paramref name="force"/>
    /// (README "Exit codes": the rule directories follow too). What killed runs left beside it is removed now.
    /// </summary>
    public static string CheckFile(string path, string option, bool force, OutputKind? kind)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new InvalidRequestException(option, $"{full} is a directory (expected a file to write)");
        CheckParent(full, option);
        if (kind is not null && !force && File.Exists(full) && !kind.Matches(full))
            throw new InvalidRequestException(option, $"{full} exists and is not {kind.Description} (use --force to replace it)");
        TemporaryPaths.RemoveStaleBeside(full);
        return full;
    }

    /// <summary>
    /// A directory destination: not a file, in a directory that exists; an existing non-empty one is replaced only
    /// with <paramref name="force"/> or when it is a previous output of <paramref name="kind"/>. What killed runs
    /// left beside it is removed now.
    /// </summary>
    public static string CheckDirectory(string path, string option, bool force, OutputKind? kind = null)
    {
        string full = Path.GetFullPath(path.TrimEnd('/'));
        if (File.Exists(full)) throw new InvalidRequestException(option, $"{full} is a file (expected a directory to create)");
        if (Directory.Exists(full) && !force && Directory.EnumerateFileSystemEntries(full).Any() && !(kind?.Matches(full) ?? false))
            throw new InvalidRequestException(option, $"{full} is not empty{(kind is null ? "" : $" and is not {kind.Description}")} (use --force to replace it)");
        CheckParent(full, option);
        TemporaryPaths.RemoveStaleBeside(full);
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
    /// destination (allowed only with <paramref name="force"/> or as a previous output of <paramref name="kind"/>) is
    /// moved aside first and removed afterwards, so the destination is always either the complete old output or the
    /// complete new one. With <paramref name="keepDirectory"/> an existing destination stays the same directory (a
    /// shell's working directory, a mount point): its entries are moved aside and the new ones moved in, the entry
    /// named <paramref name="last"/> last, so a kill in those milliseconds leaves a directory without it.
    /// </summary>
    public static void WriteDirectory(string destination, bool force, Action<string> write, string option = "-o", OutputKind? kind = null,
        bool keepDirectory = false, string? last = null)
    {
        string full = CheckDirectory(destination, option, force, kind);
        string temporary = TemporaryPaths.Beside(full);
        Directory.CreateDirectory(temporary);
        try
        {
            write(temporary);
            if (Directory.Exists(full) && keepDirectory) SwapEntries(full, temporary, last);
            else if (Directory.Exists(full))
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

    private static void SwapEntries(string destination, string filled, string? last)
    {
        string old = TemporaryPaths.Beside(destination);
        Directory.CreateDirectory(old);
        foreach (var entry in Directory.EnumerateFileSystemEntries(destination).ToList())
            Directory.Move(entry, Path.Combine(old, Path.GetFileName(entry)));
        var entries = Directory.EnumerateFileSystemEntries(filled).OrderBy(e => Path.GetFileName(e) == last).ThenBy(e => e, StringComparer.Ordinal).ToList();
        foreach (var entry in entries) Directory.Move(entry, Path.Combine(destination, Path.GetFileName(entry)));
        TemporaryPaths.Delete(old);
        TemporaryPaths.Delete(filled);
    }
}

/// <summary>
/// What an existing destination must be to be replaced without --force: a previous output of the same kind (a GGUF
/// file for quantize, an importance matrix for imatrix, a checkpoint written by init), recognised by its content.
/// </summary>
/// <param name="Description">what it is, as the error names it ("a GGUF file")</param>
/// <param name="Matches">whether the existing file or directory is one; must not throw for any other content</param>
internal sealed record OutputKind(string Description, Func<string, bool> Matches);
