using System.Text.Json;
using HymbaTools.Reports;
using HymbaTools.Tests.TestData;
using Microsoft.Playwright;

namespace HymbaTools.Tests.Reports;

/// <summary>
/// report.html and the compare SVG in a real browser: Debian's Chromium (`.ci/run` installs it), driven through
/// Microsoft.Playwright with the system executable (no browser download). The page is measured, not its source:
/// every chart has a size, every target is named in the KL chart, no two text boxes overlap and none leaves its
/// chart (getBoundingClientRect of every text element), nothing is logged as an error, and in print media every
/// text is black and every chart fits the page. A screenshot and a PDF go to TestResults/ for people to look at.
/// Without Chromium this test fails: it is part of what `bash .ci/run` proves.
/// </summary>
public class ReportBrowserTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private const string Chromium = "/usr/bin/chromium";

    /// <summary>The launch flags known to work here: no sandbox (root), no GPU, and nothing that reaches for the network.</summary>
    private static readonly string[] ChromiumArgs =
        ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

    /// <summary>TestResults/ at the repository root (where `.ci/run` collects results), else the temporary directory.</summary>
    private static string ResultsDirectory()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "HymbaTools.sln")))
                return Directory.CreateDirectory(Path.Combine(d.FullName, "TestResults")).FullName;
        return Path.GetTempPath();
    }

    private sealed record TextBox(string Text, string Class, double Left, double Top, double Right, double Bottom, string Fill);
    private sealed record Chart(string Class, double Left, double Top, double Right, double Bottom, TextBox[] Texts);

    /// <summary>Every inline SVG on the page with the client rectangle of each of its text elements.</summary>
    private const string MeasureCharts = """
        () => [...document.querySelectorAll('svg')].map(svg => {
          const r = svg.getBoundingClientRect();
          return {
            class: svg.getAttribute('class') || '', left: r.left, top: r.top, right: r.right, bottom: r.bottom,
            texts: [...svg.querySelectorAll('text')].map(t => {
              const b = t.getBoundingClientRect();
              return { text: t.textContent, class: t.getAttribute('class') || '', left: b.left, top: b.top, right: b.right, bottom: b.bottom,
                       fill: getComputedStyle(t).fill };
            })
          };
        })
        """;

    private static readonly JsonSerializerOptions CaseInsensitive = new() { PropertyNameCaseInsensitive = true };

    private static async Task<Chart[]> Measure(IPage page)
    {
        var json = await page.EvaluateAsync<JsonElement>(MeasureCharts);
        return JsonSerializer.Deserialize<Chart[]>(json.GetRawText(), CaseInsensitive)!;
    }

    /// <summary>No text outside its chart, no two texts of a chart overlapping (half a pixel of rounding allowed).</summary>
    private static void AssertLegible(Chart chart)
    {
        const double slack = 0.5;
        Assert.True(chart.Right - chart.Left > 100 && chart.Bottom - chart.Top > 50, $"{chart.Class}: no size ({chart.Right - chart.Left} x {chart.Bottom - chart.Top})");
        foreach (var t in chart.Texts)
        {
            Assert.True(t.Right > t.Left && t.Bottom > t.Top, $"{chart.Class}: '{t.Text}' has no size");
            Assert.True(t.Left >= chart.Left - slack && t.Right <= chart.Right + slack && t.Top >= chart.Top - slack && t.Bottom <= chart.Bottom + slack,
                $"{chart.Class}: '{t.Text}' [{t.Left:F1},{t.Top:F1} - {t.Right:F1},{t.Bottom:F1}] leaves the chart [{chart.Left:F1},{chart.Top:F1} - {chart.Right:F1},{chart.Bottom:F1}]");
        }
        for (int i = 0; i < chart.Texts.Length; i++)
            for (int j = i + 1; j < chart.Texts.Length; j++)
            {
                TextBox a = chart.Texts[i], b = chart.Texts[j];
                double overlapX = Math.Min(a.Right, b.Right) - Math.Max(a.Left, b.Left), overlapY = Math.Min(a.Bottom, b.Bottom) - Math.Max(a.Top, b.Top);
                Assert.False(overlapX > slack && overlapY > slack, $"{chart.Class}: '{a.Text}' and '{b.Text}' overlap by {overlapX:F1} x {overlapY:F1} px");
            }
    }

    [Fact]
    public async Task Report_charts_render_every_label_apart_inside_its_chart_without_errors()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: the browser test needs Debian's chromium package (`bash .ci/run` installs it with apt-get; or run `apt-get install chromium`)");
        string results = ResultsDirectory();
        string html = Path.Combine(results, "report-charts.html"), svgFile = Path.Combine(results, "report-charts-compare.svg");
        var report = ReportSamples.Conversion();
        ConversionReport.Write(_dir.Path, report);
        File.Copy(Path.Combine(_dir.Path, "report.html"), html, overwrite: true);
        var comparison = new QuantizationComparison("/models/hymba-austen", "Persuasion", 4096, 256,
            ReportSamples.Targets.Select(t => new ComparisonRow(t.Name.StartsWith("onnx", StringComparison.Ordinal) ? "/out/" + t.Name : $"/out/{t.Name}.gguf",
                t.Name, 1000, t.Bits, t.Kl, t.Kl * 20, 0.95, 1, 98.9 * t.PplRatio, 98.9)).ToList());
        File.WriteAllText(svgFile, comparison.ToSvg());

        using var playwright = await Playwright.CreateAsync();
        string profile = _dir.File("chromium-profile");
        await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(profile, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = Chromium, Headless = true, Args = ChromiumArgs, ViewportSize = new ViewportSize { Width = 1100, Height = 900 },
        });
        var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
        var problems = new List<string>();
        page.Console += (_, message) => { if (message.Type is "error" or "warning") problems.Add($"console {message.Type}: {message.Text}"); };
        page.PageError += (_, error) => problems.Add($"page error: {error}");
        page.RequestFailed += (_, request) => problems.Add($"request failed: {request.Url}");
        var requests = new List<string>();
        page.Request += (_, request) => requests.Add(request.Url);

        await page.GotoAsync(new Uri(html).AbsoluteUri);
        var charts = await Measure(page);
        Assert.Equal(["kl-chart", "ppl-chart", "speed-chart"], charts.Select(c => c.Class));
        foreach (var chart in charts) AssertLegible(chart);
        var kl = charts[0];
        foreach (var target in ReportSamples.Targets)
            Assert.Contains(kl.Texts, t => t.Class == "point-label" && t.Text == target.Name);
        Assert.Contains(kl.Texts, t => t.Class == "tick" && t.Text == "10⁻²");   // decade ticks on the log axis
        Assert.Contains(charts[1].Texts, t => t.Text == "+0.59 % ± 0.22");         // q4_0: perplexity change in percent
        Assert.Contains(charts[2].Texts, t => t.Text.StartsWith("onnx:int4 · ONNX Runtime int4", StringComparison.Ordinal));
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(results, "report-charts.png"), FullPage = true });

        // Printed: black text, every chart within the page's width.
        await page.EmulateMediaAsync(new PageEmulateMediaOptions { Media = Media.Print });
        await page.SetViewportSizeAsync(700, 900);
        var printed = await Measure(page);
        double pageWidth = await page.EvaluateAsync<double>("() => document.body.getBoundingClientRect().right");
        foreach (var chart in printed)
        {
            AssertLegible(chart);
            Assert.True(chart.Right <= pageWidth + 0.5, $"{chart.Class} is {chart.Right:F0} px wide on a {pageWidth:F0} px page");
            Assert.All(chart.Texts, t => Assert.Equal("rgb(0, 0, 0)", t.Fill));
        }
        await page.PdfAsync(new PagePdfOptions { Path = Path.Combine(results, "report-charts.pdf"), Format = "A4", PrintBackground = true });

        // The compare command's standalone SVG: the same chart on its own.
        await page.EmulateMediaAsync(new PageEmulateMediaOptions { Media = Media.Screen });
        await page.GotoAsync(new Uri(svgFile).AbsoluteUri);
        var standalone = await Measure(page);
        var only = Assert.Single(standalone);
        AssertLegible(only);
        foreach (var target in ReportSamples.Targets) Assert.Contains(only.Texts, t => t.Class == "point-label" && t.Text == target.Name);

        Assert.Empty(problems);
        Assert.All(requests, url => Assert.StartsWith("file://", url, StringComparison.Ordinal));   // self-contained: nothing else fetched
    }
}
