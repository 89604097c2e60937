using System.Globalization;
using System.Xml.Linq;
using HymbaTools.Reports;
using HymbaTools.Reports.Charts;

namespace HymbaTools.Tests.Reports;

/// <summary>
/// The charts' layout without a browser, on the boxes the layout itself estimates (the browser test measures the
/// real ones): labels never overlap or leave the chart, even for targets that coincide; ticks are whole decades;
/// the page stays self-contained and printable; the same report gives the same bytes.
/// </summary>
public class ChartLayoutTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    /// <summary>Every text element of an SVG with the box the layout estimated for it.</summary>
    private static List<(string Text, string Class, Box Box)> Texts(string svg)
    {
        var root = XElement.Parse(svg);
        return root.Descendants(Svg + "text").Where(t => t.Attribute("transform") is null).Select(t =>
        {
            double D(string name) => double.Parse(t.Attribute(name)!.Value, CultureInfo.InvariantCulture);
            string anchor = t.Attribute("text-anchor")?.Value ?? "start";
            return (t.Value, t.Attribute("class")?.Value ?? "", TextMetrics.BoxOf(t.Value, D("x"), D("y"), anchor, D("font-size")));
        }).ToList();
    }

    private static Box Bounds(string svg)
    {
        var root = XElement.Parse(svg);
        return new Box(0, 0, double.Parse(root.Attribute("width")!.Value, CultureInfo.InvariantCulture), double.Parse(root.Attribute("height")!.Value, CultureInfo.InvariantCulture));
    }

    private static void AssertApartAndInside(string svg)
    {
        var texts = Texts(svg);
        var bounds = Bounds(svg);
        foreach (var t in texts) Assert.True(t.Box.Inside(bounds), $"'{t.Text}' {t.Box} leaves {bounds}");
        for (int i = 0; i < texts.Count; i++)
            for (int j = i + 1; j < texts.Count; j++)
                Assert.False(texts[i].Box.Overlaps(texts[j].Box), $"'{texts[i].Text}' and '{texts[j].Text}' overlap");
    }

    [Fact]
    public void Sixteen_coincident_targets_are_all_named_apart_in_one_block_beside_the_pile()
    {
        var points = Enumerable.Range(0, 16).Select(i => new KlPoint($"gguf:variant_{i:D2}", 4.5 + i * 0.001, 0.01 + i * 1e-6, MarkerShape.Circle, false)).ToList();
        string svg = KlChart.Render(points);
        AssertApartAndInside(svg);
        var labels = Texts(svg).Where(t => t.Class == "point-label").ToList();
        Assert.Equal(points.Select(p => p.Label), labels.Select(l => l.Text));
        // A pile is named by one block beside it, a line per target, top to bottom as the points lie (higher KL first).
        Assert.Single(labels.Select(l => l.Box.Left).Distinct());
        Assert.Equal(labels.Select(l => l.Box.Top).Order(), labels.OrderByDescending(l => l.Text, StringComparer.Ordinal).Select(l => l.Box.Top));
        Assert.Equal(svg, KlChart.Render(points));   // deterministic
    }

    [Fact]
    public void Near_coincident_q4_0_and_onnx_int4_are_labelled_beside_their_points()
    {
        var points = new[] { KlPoint.For("gguf:q4_0", "a.gguf", 5.924, 0.01114), KlPoint.For("onnx:int4", "onnx-int4", 5.93, 0.0104), KlPoint.For("gguf:q8_0", "b.gguf", 9.055, 1.06e-4) };
        string svg = KlChart.Render(points);
        AssertApartAndInside(svg);
        var root = XElement.Parse(svg);
        Assert.Equal(2, root.Descendants(Svg + "circle").Count(c => c.Attribute("class")?.Value == "marker") - 1);   // two GGUF points + the legend's
        Assert.Equal(2, root.Descendants(Svg + "rect").Count(r => r.Attribute("class")?.Value == "marker"));       // the ONNX point is a square (and the legend's)
        // Each label starts within 60 px of its own point.
        foreach (var (label, text) in points.Zip(Texts(svg).Where(t => t.Class == "point-label")))
        {
            var marker = root.Descendants().First(e => e.Element(Svg + "title")?.Value == label.Label);
            double cx = double.Parse((marker.Attribute("cx") ?? marker.Attribute("x"))!.Value, CultureInfo.InvariantCulture);
            Assert.True(Math.Abs(text.Box.CenterX - cx) < 60 + text.Box.Width / 2, $"{label.Label} labelled far from its point");
        }
    }

    [Fact]
    public void The_kl_axis_has_decade_ticks_and_a_zero_line_for_a_lossless_target()
    {
        string svg = KlChart.Render([KlPoint.For("gguf:f32", "f.gguf", 32, 0), KlPoint.For("gguf:q8_0", "q.gguf", 9.055, 1.06e-4), KlPoint.For("gguf:q4_0", "r.gguf", 5.924, 0.01114)]);
        AssertApartAndInside(svg);
        var ticks = Texts(svg).Where(t => t.Class == "tick").Select(t => t.Text).ToList();
        Assert.Contains("10⁻⁴", ticks);
        Assert.Contains("10⁻³", ticks);
        Assert.Contains("10⁻²", ticks);
        Assert.Contains("10⁻¹", ticks);
        Assert.Contains("0", ticks);
        Assert.Contains("32", ticks);   // bits per weight on a log2 axis from 4-bit to 32-bit
        Assert.Contains("bits per weight (log scale)", svg, StringComparison.Ordinal);
        Assert.True(XElement.Parse(svg).Descendants(Svg + "line").Count(l => l.Attribute("class")?.Value == "grid minor") >= 8 * 3);
    }

    [Theory]
    [InlineData(0.0, 1.0, 6, 0.2)]
    [InlineData(-0.37, 0.81, 8, 0.2)]
    [InlineData(5.9, 9.1, 10, 0.5)]
    [InlineData(0, 1180, 8, 200)]
    public void Linear_ticks_are_round_and_cover_the_range(double min, double max, int count, double step)
    {
        var axis = AxisTicks.Linear(min, max, count);
        Assert.Equal(step, axis.Step, 12);
        Assert.True(axis.Min <= min && axis.Max >= max);
        Assert.True(axis.Ticks.Count <= count);
        Assert.All(axis.Ticks, t => Assert.Equal(0, Math.IEEERemainder(t, step), 9));
    }

    [Fact]
    public void The_page_is_self_contained_printable_and_shows_perplexity_as_a_change_in_percent()
    {
        var report = ReportSamples.Conversion();
        string html = ConversionReportPage.Html(report);
        foreach (var external in new[] { "<script", "src=", "href=", "url(", "@import", "http:", "https:" })
            Assert.DoesNotContain(external, html.Replace("xmlns=\"http://www.w3.org/2000/svg\"", "", StringComparison.Ordinal), StringComparison.OrdinalIgnoreCase);
        Assert.Contains("@media print", html, StringComparison.Ordinal);
        string shown = System.Net.WebUtility.HtmlDecode(html);
        Assert.Contains("+0.59 % ± 0.22", shown, StringComparison.Ordinal);     // q4_0: ratio 1.0059
        Assert.Contains("−0.19 % ± 0.10", shown, StringComparison.Ordinal);     // onnx:int4: ratio 0.9981, left of zero
        Assert.Contains("onnx:int4 · ONNX Runtime int4", shown, StringComparison.Ordinal);
        Assert.Equal(html, ConversionReportPage.Html(ReportSamples.Conversion()));
        int start = 0;
        for (int i = 0; i < 3; i++)
        {
            start = html.IndexOf("<svg", start, StringComparison.Ordinal);
            int end = html.IndexOf("</svg>", start, StringComparison.Ordinal) + "</svg>".Length;
            AssertApartAndInside(html[start..end]);
            start = end;
        }
    }
}
