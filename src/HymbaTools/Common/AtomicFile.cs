namespace HymbaTools.Common;

/// <summary>
/// Writes a file under a temporary name in the same directory, flushes it to disk and renames it into place only
/// when the writer finished, so a crash, an error or an interrupt never leaves a half-written output behind (the
/// temporary name is tracked by <see cref="TemporaryPaths"/>). The directory must exist.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new InvalidRequestException("output", $"{full} is a directory (expected a file to write)");
        string directory = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(directory)) throw new InvalidRequestException("output", $"{directory} does not exist (create it first)");
        string temporary = TemporaryPaths.Beside(full);
        try
        {
            using (var stream = new WritebackFileStream(temporary))
            {
                write(stream);
                stream.FlushToDisk();
            }
            File.Move(temporary, full, overwrite: true);
            TemporaryPaths.Release(temporary);
        }
        catch
        {
            TemporaryPaths.Delete(temporary);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, s => { var bytes = new System.Text.UTF8Encoding(false).GetBytes(text); s.Write(bytes); });
}
