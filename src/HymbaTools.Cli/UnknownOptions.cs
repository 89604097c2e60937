using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace HymbaTools.Cli;

/// <summary>
/// Words that look like an option but are none of the command's: a typo (`--tpye`) or an option another command has
/// (`compare -o`). System.CommandLine would take them as an argument (a file named "--version") or print several lines;
/// here they are one usage error naming the closest option.
/// </summary>
internal static class UnknownOptions
{
    /// <summary>The first word that looks like an option and is none, or null.</summary>
    public static string? Find(ParseResult parse)
    {
        var positional = parse.CommandResult.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens).Select(t => t.Value);
        return parse.UnmatchedTokens.Concat(positional).FirstOrDefault(LooksLikeOption);
    }

    /// <summary>"-x" or "--xyz", but not a negative number or "-" (stdin by convention).</summary>
    private static bool LooksLikeOption(string token) =>
        token.Length > 1 && token[0] == '-' && !double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    /// <summary>The one line for an unknown option: the closest name the command knows, when one is close.</summary>
    public static string Message(ParseResult parse, string token)
    {
        // One-letter aliases are all one edit apart ('-o' would be "did you mean '-q'?"): only long names are suggested.
        string? closest = token.Length <= 2 ? null : Names(parse.CommandResult)
            .Where(name => name.StartsWith("--", StringComparison.Ordinal))
            .Select(name => (name, distance: Distance(token, name)))
            .Where(c => c.distance <= Math.Max(2, c.name.Length / 3))
            .OrderBy(c => c.distance).ThenBy(c => c.name, StringComparer.Ordinal)
            .Select(c => c.name).FirstOrDefault();
        string command = parse.CommandResult.Command is RootCommand ? "" : parse.CommandResult.Command.Name + " ";
        return closest is null
            ? $"error: unknown option '{token}' (see 'hymba {command}--help')"
            : $"error: unknown option '{token}'; did you mean '{closest}'?";
    }

    /// <summary>Every option name and alias the command accepts: its own and the recursive ones of its parents.</summary>
    private static IEnumerable<string> Names(CommandResult result)
    {
        var options = result.Command.Options.ToList();
        for (var parent = result.Parent as CommandResult; parent is not null; parent = parent.Parent as CommandResult)
            options.AddRange(parent.Command.Options.Where(o => o.Recursive));
        return options.SelectMany(o => o.Aliases.Prepend(o.Name)).Distinct(StringComparer.Ordinal);
    }

    /// <summary>Edit distance with adjacent transpositions counted once (optimal string alignment).</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        for (int j = 1; j <= b.Length; j++)
        {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
        }
        return d[a.Length, b.Length];
    }
}
