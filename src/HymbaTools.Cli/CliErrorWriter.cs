namespace HymbaTools.Cli;

/// <summary>
/// The stderr every command writes to. With --quiet it lets through only what must not be missed: errors, failed
/// checks and warnings (lines starting "error:", "internal error:", "check failed:", "warning:", "interrupted");
/// progress and notes are dropped.
/// </summary>
internal sealed class CliErrorWriter(TextWriter inner, bool interactive) : TextWriter
{
    private static readonly string[] AlwaysShown = ["error:", "internal error:", "check failed:", "warning:", "interrupted"];

    /// <summary>A terminal that can redraw a progress line (not a pipe or a log).</summary>
    public bool Interactive { get; } = interactive;
    public bool Quiet { get; set; }

    public override System.Text.Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        if (!Quiet) inner.Write(value);
    }

    public override void Write(string? value)
    {
        if (!Quiet) inner.Write(value);
    }

    public override void WriteLine(string? value)
    {
        if (!Quiet || (value is not null && AlwaysShown.Any(p => value.StartsWith(p, StringComparison.Ordinal)))) inner.WriteLine(value);
    }

    public override void WriteLine()
    {
        if (!Quiet) inner.WriteLine();
    }

    public override void Flush() => inner.Flush();
}
