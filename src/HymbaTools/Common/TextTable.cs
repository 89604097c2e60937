using System.Text;

namespace HymbaTools.Common;

/// <summary>A plain-text table with right-aligned numbers; deterministic (no terminal-width guessing), so CI logs and tests see the same text.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public TextTable Add(params object?[] cells)
    {
        _rows.Add(cells.Select(c => c switch
        {
            null => "",
            long l => l.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
            int i => i.ToString(System.Globalization.CultureInfo.InvariantCulture),
            double d => d.ToString("G4", System.Globalization.CultureInfo.InvariantCulture),
            _ => c.ToString() ?? "",
        }).ToArray());
        return this;
    }

    public override string ToString()
    {
        int columns = headers.Length;
        var widths = new int[columns];
        for (int c = 0; c < columns; c++)
            widths[c] = Math.Max(headers[c].Length, _rows.Count == 0 ? 0 : _rows.Max(r => c < r.Length ? r[c].Length : 0));
        var numeric = new bool[columns];
        for (int c = 0; c < columns; c++)
            numeric[c] = _rows.Count > 0 && _rows.All(r => c >= r.Length || r[c].Length == 0 || IsNumber(r[c]));
        var sb = new StringBuilder();
        void Line(string[] cells)
        {
            for (int c = 0; c < columns; c++)
            {
                string cell = c < cells.Length ? cells[c] : "";
                if (c > 0) sb.Append("  ");
                sb.Append(numeric[c] ? cell.PadLeft(widths[c]) : (c == columns - 1 ? cell : cell.PadRight(widths[c])));
            }
            sb.Append('\n');
        }
        Line(headers);
        Line(widths.Select(w => new string('-', w)).ToArray());
        foreach (var r in _rows) Line(r);
        return sb.ToString();
    }

    private static bool IsNumber(string s) => s.Length > 0 && (char.IsDigit(s[0]) || (s[0] == '-' && s.Length > 1)) && s.All(ch => char.IsDigit(ch) || ch is ',' or '.' or '-' or 'e' or 'E' or '+' or '%');
}
