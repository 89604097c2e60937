namespace HymbaTools.Tests.Docs;

/// <summary>Fenced code blocks of a Markdown text, verbatim, by the section (heading) they stand in.</summary>
internal static class MarkdownBlocks
{
    public sealed record Block(string Language, string Code);

    /// <summary>The blocks between <paramref name="heading"/> (a whole line, e.g. "## Install") and the next heading of the same or a higher level.</summary>
    public static List<Block> InSection(string markdown, string heading)
    {
        var lines = markdown.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int start = Array.IndexOf(lines, heading);
        if (start < 0) throw new InvalidOperationException($"no heading \"{heading}\"");
        int level = heading.TakeWhile(c => c == '#').Count();
        var blocks = new List<Block>();
        for (int i = start + 1; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.StartsWith('#') && line.TakeWhile(c => c == '#').Count() is int l && l <= level && line.Length > l && line[l] == ' ') break;
            if (!line.StartsWith("```", StringComparison.Ordinal)) continue;
            string language = line[3..].Trim();
            int end = Array.FindIndex(lines, i + 1, x => x == "```");
            if (end < 0) throw new InvalidOperationException($"unclosed block after \"{heading}\"");
            blocks.Add(new Block(language, string.Join("\n", lines[(i + 1)..end])));
            i = end;
        }
        return blocks;
    }

    public static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "README.md")) && File.Exists(Path.Combine(d.FullName, "HymbaTools.sln"))) return d.FullName;
        throw new InvalidOperationException("README.md not found above " + AppContext.BaseDirectory);
    }
}
