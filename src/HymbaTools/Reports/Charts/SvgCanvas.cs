using System.Globalization;
using System.Text;

namespace HymbaTools.Reports.Charts;

/// <summary>An axis-aligned rectangle in SVG pixels (y grows downwards).</summary>
internal readonly record struct Box(double Left, double Top, double Right, double Bottom)
{
    public double Width => Right - Left;
    public double Height => Bottom - Top;
    public double CenterX => (Left + Right) / 2;
    public double CenterY => (Top + Bottom) / 2;

    public Box Inflate(double by) => new(Left - by, Top - by, Right + by, Bottom + by);

    public bool Overlaps(Box other) => Left < other.Right && other.Left < Right && Top < other.Bottom && other.Top < Bottom;

    public bool Inside(Box container) => Left >= container.Left && Right <= container.Right && Top >= container.Top && Bottom <= container.Bottom;

    /// <summary>Whether the segment from (x1, y1) to (x2, y2) passes through the box (Liang-Barsky clipping).</summary>
    public bool Crosses(double x1, double y1, double x2, double y2)
    {
        double t0 = 0, t1 = 1, dx = x2 - x1, dy = y2 - y1;
        foreach (var (p, q) in new[] { (-dx, x1 - Left), (dx, Right - x1), (-dy, y1 - Top), (dy, Bottom - y1) })
        {
            if (p == 0)
            {
                if (q < 0) return false;
                continue;
            }
            double r = q / p;
            if (p < 0) t0 = Math.Max(t0, r);
            else t1 = Math.Min(t1, r);
            if (t0 > t1) return false;
        }
        return true;
    }
}

/// <summary>
/// How much room a label takes, estimated without a font engine and on the safe side: per-character advance widths
/// that bound DejaVu Sans's (the sans-serif of Debian's Chromium, and wider than Arial/Liberation Sans), the ascent
/// and descent of the same font, and a margin. Charts place text by these boxes, so an estimate that is too small
/// would let labels touch; the browser test measures the real boxes.
/// </summary>
internal static class TextMetrics
{
    /// <summary>Advance width in em, by character class (DejaVu Sans Book, rounded up).</summary>
    private static double Advance(char c) => c switch
    {
        'i' or 'j' or 'l' or '\'' or '|' or '!' => 0.42,
        'f' or 't' or 'r' or '.' or ',' or ':' or ';' or '(' or ')' or '[' or ']' or '/' or '\\' or '-' or ' ' or 'I' or '·' => 0.45,
        'm' or 'w' or 'M' or 'W' or '@' or '%' or '+' or '=' or '<' or '>' or '~' or '#' or '±' or '−' or '×' => 1.0,
        _ when char.IsAsciiLetterUpper(c) => 0.8,
        _ when c < 128 => 0.66,
        _ => 1.0,
    };

    public static double Width(string text, double fontSize) => text.Sum(Advance) * fontSize * 1.04 + 2;

    /// <summary>Ascent above the baseline and descent below it, in px (DejaVu: 0.93 and 0.24 em, rounded up).</summary>
    public static (double Ascent, double Descent) Extent(double fontSize) => (0.97 * fontSize, 0.27 * fontSize);

    /// <summary>The box of a text drawn at (x, baseline) with the given text-anchor.</summary>
    public static Box BoxOf(string text, double x, double baseline, string anchor, double fontSize)
    {
        double width = Width(text, fontSize);
        double left = anchor switch { "end" => x - width, "middle" => x - width / 2, _ => x };
        var (ascent, descent) = Extent(fontSize);
        return new Box(left, baseline - ascent, left + width, baseline + descent);
    }

    /// <summary>Where to put the baseline so the text's box has this top.</summary>
    public static double BaselineForTop(double top, double fontSize) => top + Extent(fontSize).Ascent;
}

/// <summary>Writes SVG elements with invariant, fixed-precision numbers (the same input gives the same bytes).</summary>
internal sealed class SvgCanvas
{
    private readonly StringBuilder _sb = new();

    public SvgCanvas(double width, double height, string label, string? className = null)
    {
        Width = width;
        Height = height;
        _sb.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{N(width)}\" height=\"{N(height)}\" viewBox=\"0 0 {N(width)} {N(height)}\" role=\"img\" aria-label=\"{Escape(label)}\" font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\"{(className is null ? "" : $" class=\"{className}\"")}>\n");
        _sb.Append(CultureInfo.InvariantCulture, $"<rect width=\"{N(width)}\" height=\"{N(height)}\" fill=\"#fff\"/>\n");
    }

    public double Width { get; }
    public double Height { get; }
    public Box Bounds => new(0, 0, Width, Height);

    public static string N(double v) => Math.Round(v, 1).ToString("0.#", CultureInfo.InvariantCulture);
    public static string Escape(string s) => System.Net.WebUtility.HtmlEncode(s);

    public SvgCanvas Raw(string element)
    {
        _sb.Append(element).Append('\n');
        return this;
    }

    public SvgCanvas Line(double x1, double y1, double x2, double y2, string stroke, double width = 1, string? dash = null, string? className = null) =>
        Raw($"<line x1=\"{N(x1)}\" y1=\"{N(y1)}\" x2=\"{N(x2)}\" y2=\"{N(y2)}\" stroke=\"{stroke}\" stroke-width=\"{N(width)}\"" +
            $"{(dash is null ? "" : $" stroke-dasharray=\"{dash}\"")}{(className is null ? "" : $" class=\"{className}\"")}/>");

    public SvgCanvas Rect(double x, double y, double width, double height, string fill, string? className = null) =>
        Raw($"<rect x=\"{N(x)}\" y=\"{N(y)}\" width=\"{N(Math.Max(0, width))}\" height=\"{N(height)}\" fill=\"{fill}\"{(className is null ? "" : $" class=\"{className}\"")}/>");

    /// <summary>Text at (x, baseline); the returned box is the estimate the layout used.</summary>
    public Box Text(double x, double baseline, string text, double fontSize, string anchor = "start", string? className = null, string fill = "#000")
    {
        Raw($"<text x=\"{N(x)}\" y=\"{N(baseline)}\" font-size=\"{N(fontSize)}\"{(anchor == "start" ? "" : $" text-anchor=\"{anchor}\"")} fill=\"{fill}\"" +
            $"{(className is null ? "" : $" class=\"{className}\"")}>{Escape(text)}</text>");
        return TextMetrics.BoxOf(text, x, baseline, anchor, fontSize);
    }

    public override string ToString() => _sb + "</svg>";
}
