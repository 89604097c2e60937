namespace HymbaTools.Cli;

/// <summary>Conventions every command shares for what it prints and where it finds companion files.</summary>
internal static class CliOutput
{
    /// <summary>A report's JSON on stdout (the report writes UTF-8 into a stream).</summary>
    public static void Json(TextWriter stdout, Action<Stream> write)
    {
        using var buffer = new MemoryStream();
        write(buffer);
        stdout.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }

    /// <summary>Where tokenizer.model is looked for: --tokenizer when given, else the artifact's directory (a checkpoint or an ONNX export) or the directory of a .gguf file.</summary>
    public static string TokenizerDirectory(string artifact, string? explicitDirectory) =>
        explicitDirectory ?? (Directory.Exists(artifact) ? artifact : Path.GetDirectoryName(Path.GetFullPath(artifact))!);

    /// <summary>A note on stderr while a progress line may be drawn: on a line of its own.</summary>
    public static void Note(TextWriter stderr, string text)
    {
        if (ConsoleProgress.LineOpen) stderr.WriteLine();
        stderr.WriteLine($"note: {text}");
    }
}
