using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using HymbaTools.Reports.Charts;
using static HymbaTools.Reports.ConversionReport;

namespace HymbaTools.Reports;

/// <summary>
/// report.html: one self-contained page (no script, no external resource; inline SVG and one style sheet) with the
/// table and three charts that each answer their question without it: mean KL against bits per weight (log decades,
/// every point named beside it, the Pareto front), perplexity as the change from the reference in percent (bars
/// around zero with their uncertainty), and decode speed with the runtime that ran each target. A print style sheet
/// keeps it legible on paper: black text on white, charts scaled to the page and never split.
/// </summary>
internal static class ConversionReportPage
{
    private const string Style =
        "body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;margin:2em;max-width:64em;color:#000;background:#fff}" +
        "table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #999;padding:.25em .5em;text-align:right}" +
        "td:first-child,th:first-child,td:last-child,th:last-child{text-align:left}.fail{color:#a00;font-weight:bold}" +
        "figure{margin:1.5em 0}figcaption{margin-top:.3em}svg{max-width:100%;height:auto;display:block}" +
        "@page{margin:12mm}" +
        "@media print{body{margin:0;max-width:none;font-size:10pt}table{font-size:8pt}figure{break-inside:avoid;page-break-inside:avoid}" +
        "h1{font-size:16pt}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}.fail{color:#000}}";

    public static string Html(JsonObject report)
    {
        var targets = Targets(report).OrderBy(t => D(t, "bits_per_weight")).ToList();
        string Esc(string s) => System.Net.WebUtility.HtmlEncode(s);
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Conversion report</title>\n<style>").Append(Style).Append("</style></head><body>\n")
          .Append("<h1>Conversion report</h1>\n<p>Reference <code>").Append(Esc(report["reference"]!.ToString())).Append("</code>")
          .Append(Esc(HubNote(report).Replace("`", "", StringComparison.Ordinal))).Append(", evaluated on ")
          .Append(Esc(report["token_source"]!.ToString() + EvaluationNote(report))).Append(".</p>\n");
        if (VerificationNote(report) is { } verified)
            sb.Append(report["verification"]!["passed"]!.GetValue<bool>() ? "<p>" : "<p class=\"fail\">").Append(Esc(verified.Replace("`", "", StringComparison.Ordinal))).Append("</p>\n");
        var markdownTable = Markdown(report).Split('\n').Where(l => l.StartsWith('|')).ToList();
        sb.Append("<table>\n");
        for (int i = 0; i < markdownTable.Count; i++)
        {
            if (i == 1) continue; // the Markdown alignment row
            var cells = markdownTable[i].Trim('|').Split('|').Select(c => Esc(c.Trim()));
            string tag = i == 0 ? "th" : "td";
            sb.Append("<tr>").Append(string.Concat(cells.Select(c => $"<{tag}>{c}</{tag}>"))).Append("</tr>\n");
        }
        sb.Append("</table>\n");
        var failures = report["gate_failures"]!.AsArray();
        sb.Append(failures.Count == 0 ? "<p>Every gate holds.</p>\n" : string.Concat(failures.Select(f => $"<p class=\"fail\">{Esc(f!.ToString())}</p>\n")));
        if (targets.Count == 0)
        {
            // A run stopped before its targets (a failed verify) keeps its report: nothing to chart.
            sb.Append("</body></html>\n");
            return sb.ToString();
        }
        Figure(sb, KlChart.Render(targets.Select(t => KlPoint.For(S(t, "name"), S(t, "path"), D(t, "bits_per_weight"), D(t, "mean_kl"))).ToList()),
            "Mean KL divergence from the reference (nats per token, log scale) against bits per weight: lower and further left is better. " +
            "Circles are GGUF files, squares ONNX exports, hollow markers variants built with an importance matrix; the dashed line is the " +
            "Pareto front (no other target both smaller and closer to the reference).");
        Figure(sb, PerplexityChart(targets),
            "Perplexity of each target as the change from the reference's, in percent (0 = the same; right of zero is worse), " +
            "with its standard error.");
        Figure(sb, SpeedChart(targets),
            "Decode speed on the machine that made the report (tokens/s after a warm-up, one run), with the runtime that ran each target " +
            "and its prefill speed. GGUF targets run in the TorchSharp reference on dequantized float32 weights, so their speed is not llama.cpp's.");
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    private static void Figure(StringBuilder sb, string svg, string caption) =>
        sb.Append("<figure>\n").Append(svg).Append("\n<figcaption>").Append(System.Net.WebUtility.HtmlEncode(caption)).Append("</figcaption></figure>\n");

    private static string Signed(double value, string format) =>
        (value > 0 ? "+" : value < 0 ? "−" : "") + Math.Abs(value).ToString(format, CultureInfo.InvariantCulture);

    private static string PerplexityChart(List<JsonObject> targets)
    {
        var bars = targets.Select(t =>
        {
            double change = (D(t, "perplexity_ratio") - 1) * 100, error = D(t, "perplexity_ratio_uncertainty") * 100;
            string text = $"{Signed(change, "0.00")} % ± {error.ToString("0.00", CultureInfo.InvariantCulture)}";
            return new Bar(S(t, "name"), change, error, text, change > 0 ? "#c44e52" : "#4c72b0");
        }).ToList();
        return BarChart.Render(bars, "perplexity change from the reference (%)",
            (v, step) => (v > 0 ? "+" : v < 0 ? "−" : "") + AxisTicks.Format(Math.Abs(v), step) + " %",
            "perplexity change from the reference in percent, per target", "ppl-chart");
    }

    private static string SpeedChart(List<JsonObject> targets)
    {
        var bars = targets.Select(t =>
        {
            string runtime = ConversionReport.Runtime(t);
            double decode = D(t, "decode_tokens_per_second"), prefill = D(t, "prefill_tokens_per_second");
            string text = string.Create(CultureInfo.InvariantCulture, $"{decode:0.0} tok/s (prefill {prefill:N0})");
            return new Bar($"{S(t, "name")} · {runtime}", decode, 0, text, runtime.StartsWith("ONNX", StringComparison.Ordinal) ? "#55a868" : "#8172b2");
        }).ToList();
        return BarChart.Render(bars, "decode tokens/s (this machine)", (v, step) => AxisTicks.Format(v, step), "decode speed per target with its runtime", "speed-chart");
    }
}
