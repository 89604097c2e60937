namespace HymbaTools.Reports.Charts;

/// <summary>One row of a bar chart: its name, value (and ± uncertainty), the text shown at its end, and its colour.</summary>
internal sealed record Bar(string Label, double Value, double Uncertainty, string ValueText, string Color);

/// <summary>
/// Horizontal bars from zero, one row per target: names in a left column, the value at each bar's end (right of a
/// positive bar, left of a negative one, in room kept for it on both sides), round ticks with grid lines and the
/// zero line, and the axis title below. Rows are taller than a line of text, so no two texts meet by construction;
/// the chart widens when names or values are long.
/// </summary>
internal static class BarChart
{
    private const double MinWidth = 720, FontSize = 11, TitleFont = 12, BarHeight = 16, RowGap = 9, PlotWidth = 380;

    public static string Render(IReadOnlyList<Bar> bars, string axisTitle, Func<double, double, string> tickText, string ariaLabel, string className)
    {
        if (bars.Count == 0) return new SvgCanvas(MinWidth, 60, ariaLabel + ": no data").ToString();
        var (ascent, descent) = TextMetrics.Extent(FontSize);
        double tickHeight = ascent + descent;
        double nameWidth = bars.Max(b => TextMetrics.Width(b.Label, FontSize));
        // Room for a value label beyond either end of the data, and for half a tick label past the last tick.
        double valueRoom = Math.Max(bars.Max(b => TextMetrics.Width(b.ValueText, FontSize)) + 6, 40);
        double left = 8 + nameWidth + 8;
        double width = Math.Max(MinWidth, left + 2 * valueRoom + PlotWidth + 12);
        double top = 10, rowsBottom = top + bars.Count * (BarHeight + RowGap);
        double height = rowsBottom + 6 + tickHeight + 8 + tickHeight + 8;
        // The bars' scale leaves room for a value label on either side of the data.
        var inner = new Box(left + valueRoom, top, width - 12 - valueRoom, rowsBottom);
        double lo = Math.Min(0, bars.Min(b => b.Value - b.Uncertainty)), hi = Math.Max(0, bars.Max(b => b.Value + b.Uncertainty));
        var axis = FitTicks(lo, hi, inner);
        double X(double v) => inner.Left + (v - axis.Min) / (axis.Max - axis.Min) * inner.Width;

        var svg = new SvgCanvas(width, height, ariaLabel, className);
        foreach (double t in axis.Ticks)
        {
            svg.Line(X(t), top - 4, X(t), rowsBottom, t == 0 ? "#000" : "#ccc", t == 0 ? 1.2 : 1, className: t == 0 ? "zero" : "grid");
            svg.Text(X(t), rowsBottom + 6 + ascent, tickText(t, axis.Step), FontSize, "middle", "tick");
        }
        for (int i = 0; i < bars.Count; i++)
        {
            var b = bars[i];
            double y = top + i * (BarHeight + RowGap) + RowGap / 2, middle = y + BarHeight / 2, baseline = middle + FontSize * 0.35;
            double x0 = X(0), x1 = X(b.Value);
            svg.Text(left - 8, baseline, b.Label, FontSize, "end", "bar-name");
            svg.Rect(Math.Min(x0, x1), y, Math.Abs(x1 - x0), BarHeight, b.Color, "bar");
            double reachLow = x1, reachHigh = x1;
            if (b.Uncertainty > 0)
            {
                (reachLow, reachHigh) = (X(b.Value - b.Uncertainty), X(b.Value + b.Uncertainty));
                svg.Line(reachLow, middle, reachHigh, middle, "#000", 1, className: "whisker");
                svg.Line(reachLow, middle - 4, reachLow, middle + 4, "#000", 1, className: "whisker");
                svg.Line(reachHigh, middle - 4, reachHigh, middle + 4, "#000", 1, className: "whisker");
            }
            if (b.Value >= 0) svg.Text(Math.Max(x1, reachHigh) + 5, baseline, b.ValueText, FontSize, className: "bar-value");
            else svg.Text(Math.Min(x1, reachLow) - 5, baseline, b.ValueText, FontSize, "end", "bar-value");
        }
        svg.Text(inner.CenterX, height - 8 - TextMetrics.Extent(TitleFont).Descent, axisTitle, TitleFont, "middle", "axis-title");
        return svg.ToString();
    }

    /// <summary>Round ticks covering [lo, hi] whose labels fit side by side.</summary>
    private static (double Min, double Max, double Step, IReadOnlyList<double> Ticks) FitTicks(double lo, double hi, Box inner)
    {
        for (int count = 8; ; count--)
        {
            var axis = AxisTicks.Linear(lo, hi, count);
            double pixels = inner.Width / Math.Max(1, axis.Ticks.Count - 1);
            double widest = axis.Ticks.Max(t => TextMetrics.Width(AxisTicks.Format(t, axis.Step) + " %", FontSize));
            if (widest + 8 <= pixels || count <= 2) return axis;
        }
    }
}
