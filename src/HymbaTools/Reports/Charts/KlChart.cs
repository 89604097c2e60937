namespace HymbaTools.Reports.Charts;

/// <summary>How a point is drawn: the container format by shape (told apart in black and white too), a hollow marker for an importance-matrix variant.</summary>
internal enum MarkerShape { Circle, Square, Diamond }

/// <summary>One artifact in the KL chart.</summary>
internal sealed record KlPoint(string Label, double BitsPerWeight, double MeanKl, MarkerShape Shape, bool Hollow)
{
    /// <summary>ONNX exports ("onnx:…") are squares, GGUF files ("gguf:…" or a .gguf path) circles, anything else (a checkpoint) a diamond; "+imatrix" variants hollow.</summary>
    public static KlPoint For(string label, string path, double bitsPerWeight, double meanKl)
    {
        var shape = label.StartsWith("onnx:", StringComparison.Ordinal) ? MarkerShape.Square
            : label.StartsWith("gguf:", StringComparison.Ordinal) || path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? MarkerShape.Circle
            : MarkerShape.Diamond;
        return new KlPoint(label, bitsPerWeight, meanKl, shape, label.EndsWith(ConversionReport.ImportanceSuffix, StringComparison.Ordinal));
    }
}

/// <summary>
/// Mean KL (log scale, whole-decade ticks and grid lines, minor lines at 2..9) against bits per weight (round ticks
/// and grid lines), every point named beside it by <see cref="LabelPlacer"/>, the Pareto front dashed. A target
/// identical to the reference (KL 0) sits on a "0" line below the lowest decade. Every text box is placed by
/// estimate: tick labels and titles outside the plot area, point labels inside it, none overlapping; the chart grows
/// taller until every label finds room.
/// </summary>
internal static class KlChart
{
    private const double Width = 720, FontSize = 11, TickFont = 11, TitleFont = 12, MarkerRadius = 5;

    public static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f00", "#393b79"];

    public static string Render(IReadOnlyList<KlPoint> points, string? title = null)
    {
        if (points.Count == 0) return new SvgCanvas(Width, 60, "mean KL against bits per weight: no data").ToString();
        for (double height = 420; ; height += 80)
        {
            if (TryRender(points, title, height) is { } svg) return svg;
            if (height > 420 + 80 * 40) throw new InvalidOperationException($"no room for {points.Count} labels in a chart of {height} px");
        }
    }

    private static string? TryRender(IReadOnlyList<KlPoint> points, string? title, double height)
    {
        var positive = points.Where(p => p.MeanKl > 0).Select(p => p.MeanKl).ToList();
        bool hasZero = points.Any(p => !(p.MeanKl > 0));
        var (low, high) = positive.Count > 0 ? AxisTicks.Decades(positive.Min(), positive.Max()) : (-6, -5);
        double tickHeight = TextMetrics.Extent(TickFont).Ascent + TextMetrics.Extent(TickFont).Descent;

        // Margins: title and legend rows on top; y tick labels and the rotated axis title on the left; x tick labels and axis title below.
        double top = 10 + (title is null ? 0 : 22) + 26;
        double yLabelWidth = Enumerable.Range(low, high - low + 1).Select(e => TextMetrics.Width(AxisTicks.DecadeLabel(e), TickFont)).Append(TextMetrics.Width("0", TickFont)).Max();
        double left = 8 + tickHeight + 8 + yLabelWidth + 6;
        double right = 16, bottom = 6 + tickHeight + 8 + tickHeight + 8;
        var plot = new Box(left, top, Width - right, height - bottom);
        double zeroBand = hasZero ? 34 : 0;
        double decadeBottom = plot.Bottom - zeroBand;

        // Bits per weight on a log2 scale when the range spans a factor of 3 or more (a 16- or 32-bit target beside
        // 4-bit ones would squeeze every quantized target into a corner of a linear axis); linear otherwise.
        double minB = points.Min(p => p.BitsPerWeight), maxB = points.Max(p => p.BitsPerWeight);
        bool logX = minB > 0 && maxB / minB >= 3;
        Func<double, double> scale = logX ? Math.Log2 : b => b;
        double span = Math.Max(scale(maxB) - scale(minB), logX ? 0.1 : 0.5);
        var xAxis = logX ? Log2Ticks(scale(minB) - span * 0.06, scale(maxB) + span * 0.06, plot) : FitTicks(minB - span * 0.06, maxB + span * 0.06, plot);
        double X(double b) => plot.Left + (scale(b) - xAxis.Min) / (xAxis.Max - xAxis.Min) * plot.Width;
        double Y(double kl) => kl > 0 ? plot.Top + (high - Math.Log10(kl)) / (high - low) * (decadeBottom - plot.Top) : plot.Bottom - zeroBand / 2;

        // Diamonds reach one pixel beyond the marker radius: the placer keeps labels clear of the larger shape.
        var labels = LabelPlacer.Place(points.Select(p => new LabelledPoint(X(p.BitsPerWeight), Y(p.MeanKl), MarkerRadius + 1, p.Label)).ToList(), plot.Inflate(-1), FontSize, []);
        if (labels is null) return null;

        var svg = new SvgCanvas(Width, height, "mean KL against bits per weight, one labelled point per target", "kl-chart");
        if (title is not null) svg.Text(Width / 2, TextMetrics.BaselineForTop(8, 13), title, 13, "middle");

        // Grid: every decade (labelled when there is room), minor lines at 2..9 times it; round bits-per-weight ticks.
        double decadeSpacing = (decadeBottom - plot.Top) / (high - low);
        int labelEvery = (int)Math.Ceiling(tickHeight * 1.4 / decadeSpacing);
        var tickLabels = new List<Box>();   // y tick labels first; an x tick label that would touch one (at the corner) is left out
        for (int e = low; e <= high; e++)
        {
            double y = Y(Math.Pow(10, e));
            svg.Line(plot.Left, y, plot.Right, y, "#bbb", 1, className: "grid major");
            if ((e - low) % labelEvery == 0) tickLabels.Add(svg.Text(plot.Left - 6, y + TickFont * 0.35, AxisTicks.DecadeLabel(e), TickFont, "end", "tick"));
            if (e == high) continue;
            for (int m = 2; m <= 9; m++)
            {
                double ym = Y(m * Math.Pow(10, e));
                svg.Line(plot.Left, ym, plot.Right, ym, "#e4e4e4", 1, className: "grid minor");
            }
        }
        if (hasZero)
        {
            double y = plot.Bottom - zeroBand / 2;
            svg.Line(plot.Left, y, plot.Right, y, "#bbb", 1, "2 3", "grid zero");
            tickLabels.Add(svg.Text(plot.Left - 6, y + TickFont * 0.35, "0", TickFont, "end", "tick"));
        }
        foreach (double b in xAxis.Ticks)
        {
            svg.Line(X(b), plot.Top, X(b), plot.Bottom, "#bbb", 1, className: "grid major");
            string text = AxisTicks.Format(b, logX && b % 1 != 0 ? 0.1 : xAxis.Step);
            double baseline = plot.Bottom + 6 + TextMetrics.Extent(TickFont).Ascent;
            if (!tickLabels.Any(TextMetrics.BoxOf(text, X(b), baseline, "middle", TickFont).Inflate(2).Overlaps))
                svg.Text(X(b), baseline, text, TickFont, "middle", "tick");
        }
        svg.Raw($"<rect x=\"{SvgCanvas.N(plot.Left)}\" y=\"{SvgCanvas.N(plot.Top)}\" width=\"{SvgCanvas.N(plot.Width)}\" height=\"{SvgCanvas.N(plot.Height)}\" fill=\"none\" stroke=\"#000\"/>");
        svg.Text(plot.CenterX, height - 8 - TextMetrics.Extent(TitleFont).Descent, logX ? "bits per weight (log scale)" : "bits per weight", TitleFont, "middle", "axis-title");
        double titleX = 8 + TextMetrics.Extent(TitleFont).Ascent;
        svg.Raw($"<text x=\"{SvgCanvas.N(titleX)}\" y=\"{SvgCanvas.N(plot.CenterY)}\" font-size=\"{TitleFont}\" text-anchor=\"middle\" class=\"axis-title\" transform=\"rotate(-90 {SvgCanvas.N(titleX)} {SvgCanvas.N(plot.CenterY)})\">mean KL (nats, log scale)</text>");
        Legend(svg, points, plot, top - 26);

        // Pareto front: by size, every target closer to the reference than all smaller ones.
        var front = new List<KlPoint>();
        foreach (var p in points.OrderBy(p => p.BitsPerWeight).ThenBy(p => p.MeanKl))
            if (front.Count == 0 || p.MeanKl < front[^1].MeanKl) front.Add(p);
        if (front.Count > 1)
            svg.Raw("<polyline class=\"pareto\" fill=\"none\" stroke=\"#666\" stroke-dasharray=\"5 3\" points=\"" +
                    string.Join(" ", front.Select(p => $"{SvgCanvas.N(X(p.BitsPerWeight))},{SvgCanvas.N(Y(p.MeanKl))}")) + "\"/>");

        for (int i = 0; i < points.Count; i++)
        {
            var (p, label) = (points[i], labels[i]);
            string color = Palette[i % Palette.Length];
            if (label.Leader is { } l) svg.Line(l.X1, l.Y1, l.X2, l.Y2, "#555", 0.8, className: "leader");
            svg.Raw(Marker(p.Shape, p.Hollow, label.Point.X, label.Point.Y, color, p.Label));
            svg.Text(label.X, label.Baseline, p.Label, FontSize, className: "point-label");
        }
        return svg.ToString();
    }

    /// <summary>Round x ticks whose labels fit side by side (the most that do, at most 10).</summary>
    private static (double Min, double Max, double Step, IReadOnlyList<double> Ticks) FitTicks(double min, double max, Box plot)
    {
        for (int count = 10; ; count--)
        {
            var axis = AxisTicks.Linear(min, max, count);
            double pixelsPerTick = plot.Width / Math.Max(1, axis.Ticks.Count - 1);
            double widest = axis.Ticks.Max(t => TextMetrics.Width(AxisTicks.Format(t, axis.Step), TickFont));
            if (widest + 8 <= pixelsPerTick || count <= 2) return axis;
        }
    }

    private static readonly double[] Log2TickValues = [1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128];

    /// <summary>
    /// Ticks of a log2 axis over [log2 min, log2 max]: powers of two first, then 1.5, 3, 5, 6, 10, 12 ... wherever their
    /// labels keep 8 px from the ones already kept. Min and Max stay in log2 units; Step 1 formats whole numbers.
    /// </summary>
    private static (double Min, double Max, double Step, IReadOnlyList<double> Ticks) Log2Ticks(double min, double max, Box plot)
    {
        double X(double v) => plot.Left + (Math.Log2(v) - min) / (max - min) * plot.Width;
        var kept = new List<(double Value, double Left, double Right)>();
        foreach (double v in Log2TickValues.Where(v => Math.Log2(v) >= min && Math.Log2(v) <= max).OrderBy(v => double.IsInteger(Math.Log2(v)) ? 0 : 1).ThenBy(v => v))
        {
            double half = TextMetrics.Width(AxisTicks.Format(v, v % 1 == 0 ? 1 : 0.1), TickFont) / 2;
            if (kept.All(k => X(v) - half >= k.Right + 8 || X(v) + half <= k.Left - 8)) kept.Add((v, X(v) - half, X(v) + half));
        }
        return (min, max, 1, kept.Select(k => k.Value).Order().ToList());
    }

    /// <summary>The marker shapes in use and the Pareto line, explained in one row above the plot (right-aligned).</summary>
    private static void Legend(SvgCanvas svg, IReadOnlyList<KlPoint> points, Box plot, double rowTop)
    {
        var items = new List<(Action<double, double> Draw, string Text)>();
        void Add(bool present, MarkerShape shape, bool hollow, string text)
        {
            if (present) items.Add(((x, y) => svg.Raw(Marker(shape, hollow, x - MarkerRadius, y, "#444", null)), text));
        }
        Add(points.Any(p => p.Shape == MarkerShape.Circle && !p.Hollow), MarkerShape.Circle, false, "GGUF");
        Add(points.Any(p => p.Shape == MarkerShape.Square), MarkerShape.Square, false, "ONNX");
        Add(points.Any(p => p.Shape == MarkerShape.Diamond), MarkerShape.Diamond, false, "checkpoint");
        Add(points.Any(p => p.Hollow), MarkerShape.Circle, true, "with importance matrix");
        items.Add(((x, y) => svg.Line(x - 20, y, x, y, "#666", 1, "5 3"), "Pareto front"));
        double right = plot.Right, baseline = TextMetrics.BaselineForTop(rowTop, FontSize), middle = baseline - FontSize * 0.35;
        for (int i = items.Count - 1; i >= 0; i--)
        {
            double width = TextMetrics.Width(items[i].Text, FontSize);
            svg.Text(right - width + 1, baseline, items[i].Text, FontSize, className: "legend");
            items[i].Draw(right - width - 4, middle);
            right -= width + 4 + 20 + 16;
        }
    }

    private static string Marker(MarkerShape shape, bool hollow, double x, double y, string color, string? tooltip)
    {
        string paint = hollow ? $"fill=\"#fff\" stroke=\"{color}\" stroke-width=\"2\" class=\"marker calibrated\"" : $"fill=\"{color}\" fill-opacity=\"0.85\" stroke=\"#000\" stroke-width=\"0.5\" class=\"marker\"";
        string title = tooltip is null ? "/>" : $"><title>{SvgCanvas.Escape(tooltip)}</title></{Tag(shape)}>";
        double r = MarkerRadius - (hollow ? 1 : 0);
        return shape switch
        {
            MarkerShape.Square => $"<rect x=\"{SvgCanvas.N(x - r)}\" y=\"{SvgCanvas.N(y - r)}\" width=\"{SvgCanvas.N(2 * r)}\" height=\"{SvgCanvas.N(2 * r)}\" {paint}{title}",
            MarkerShape.Diamond => $"<polygon points=\"{SvgCanvas.N(x)},{SvgCanvas.N(y - r - 1)} {SvgCanvas.N(x + r + 1)},{SvgCanvas.N(y)} {SvgCanvas.N(x)},{SvgCanvas.N(y + r + 1)} {SvgCanvas.N(x - r - 1)},{SvgCanvas.N(y)}\" {paint}{title}",
            _ => $"<circle cx=\"{SvgCanvas.N(x)}\" cy=\"{SvgCanvas.N(y)}\" r=\"{SvgCanvas.N(r)}\" {paint}{title}",
        };
    }

    private static string Tag(MarkerShape shape) => shape switch { MarkerShape.Square => "rect", MarkerShape.Diamond => "polygon", _ => "circle" };
}
