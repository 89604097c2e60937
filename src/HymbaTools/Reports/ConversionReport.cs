using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HymbaTools.Verification;

namespace HymbaTools.Reports;

/// <summary>One converted target: where it went, its size, and how it differs from the reference.</summary>
public sealed record ConversionTarget(string Name, string Path, long FileBytes, double BitsPerWeight, DiffStatistics Diff, double PrefillTokensPerSecond, double DecodeTokensPerSecond);

/// <summary>A gate: a figure of every target held to a bound.</summary>
public sealed record ConversionGate(string Option, string Figure, double Bound, bool UpperBound, Func<ConversionTarget, double> Value)
{
    /// <summary>The failure message for a target, or null when it holds.</summary>
    public string? Check(ConversionTarget t)
    {
        double v = Value(t);
        bool ok = UpperBound ? v <= Bound : v >= Bound;
        return ok ? null : string.Create(CultureInfo.InvariantCulture, $"gate failed: {t.Name}: {Figure} {v:G6} {(UpperBound ? ">" : "<")} {Option} {Bound:G6}");
    }

    public static ConversionGate MaxKl(double bound) => new("--max-kl", "mean KL", bound, true, t => t.Diff.MeanKl.Value);
    public static ConversionGate MinTop1(double bound) => new("--min-top1", "same top token", bound, false, t => t.Diff.SameTop.Value);
    public static ConversionGate MaxPplRatio(double bound) => new("--max-ppl-ratio", "perplexity ratio", bound, true, t => t.Diff.PerplexityRatio.Value);
}

/// <summary>
/// What `hymba convert` (or `report merge`) writes: report.json (schemas/conversion-report.schema.json), report.md
/// (a table for a model card) and report.html, one self-contained page (no network, no scripts) with the table and
/// inline SVG charts: mean KL against bits per weight with the Pareto front, perplexity ratio and decode speed per target.
/// </summary>
public static class ConversionReport
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static JsonObject ToJson(string reference, string tokenSource, IReadOnlyList<ConversionTarget> targets, IReadOnlyList<string> failures)
    {
        var report = Targets(reference, tokenSource, targets, failures);
        // A reference that is a snapshot in the local HuggingFace cache is recorded by its Hub id and commit too.
        string directory = System.IO.Directory.Exists(reference) ? reference : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(reference))!;
        if (Checkpoints.HubSnapshot.FromDirectory(directory) is { } hub)
            report.Insert(0, "reference_hub", new JsonObject { ["repository"] = hub.RepoId, ["revision"] = hub.Commit });
        return report;
    }

    private static JsonObject Targets(string reference, string tokenSource, IReadOnlyList<ConversionTarget> targets, IReadOnlyList<string> failures) => new()
    {
        ["reference"] = reference,
        ["token_source"] = tokenSource,
        ["passed"] = failures.Count == 0,
        ["gate_failures"] = new JsonArray(failures.Select(f => (JsonNode)f).ToArray()),
        ["targets"] = new JsonArray(targets.Select(t => (JsonNode)new JsonObject
        {
            ["name"] = t.Name,
            ["path"] = t.Path,
            ["file_bytes"] = t.FileBytes,
            ["bits_per_weight"] = t.BitsPerWeight,
            ["mean_kl"] = t.Diff.MeanKl.Value,
            ["mean_kl_uncertainty"] = t.Diff.MeanKl.Uncertainty,
            ["kl_p99"] = t.Diff.KlPercentiles["p99"],
            ["same_top"] = t.Diff.SameTop.Value,
            ["rms_delta_p"] = t.Diff.RmsDeltaP.Value,
            ["perplexity_ratio"] = t.Diff.PerplexityRatio.Value,
            ["perplexity_ratio_uncertainty"] = t.Diff.PerplexityRatio.Uncertainty,
            ["max_abs_logit_diff"] = t.Diff.MaxAbsLogitDiff,
            ["prefill_tokens_per_second"] = t.PrefillTokensPerSecond,
            ["decode_tokens_per_second"] = t.DecodeTokensPerSecond,
        }).ToArray()),
    };

    /// <summary>Writes report.json, report.md and report.html into <paramref name="directory"/>.</summary>
    public static void Write(string directory, JsonObject report)
    {
        Common.AtomicFile.WriteAllText(System.IO.Path.Combine(directory, "report.json"), report.ToJsonString(Indented) + "\n");
        Common.AtomicFile.WriteAllText(System.IO.Path.Combine(directory, "report.md"), Markdown(report));
        Common.AtomicFile.WriteAllText(System.IO.Path.Combine(directory, "report.html"), Html(report));
    }

    /// <summary>Joins per-target reports (one CI job each) into one; the reference and token source must agree.</summary>
    public static JsonObject Merge(IReadOnlyList<(string Path, JsonObject Report)> reports)
    {
        if (reports.Count == 0) throw new Common.InvalidRequestException("reports", "no report to merge");
        var first = reports[0].Report;
        var targets = new JsonArray();
        var failures = new JsonArray();
        foreach (var (path, report) in reports)
        {
            foreach (var key in new[] { "reference", "token_source" })
                if (report[key]?.ToString() != first[key]?.ToString())
                    throw new Common.InvalidConfigException(path, key, $"'{report[key]}' differs from the first report's '{first[key]}'");
            foreach (var t in report["targets"]?.AsArray() ?? []) targets.Add(t!.DeepClone());
            foreach (var f in report["gate_failures"]?.AsArray() ?? []) failures.Add(f!.DeepClone());
        }
        var merged = new JsonObject
        {
            ["reference"] = first["reference"]!.DeepClone(),
            ["token_source"] = first["token_source"]!.DeepClone(),
            ["passed"] = failures.Count == 0,
            ["gate_failures"] = failures,
            ["targets"] = targets,
        };
        if (first["reference_hub"] is { } hub) merged.Insert(0, "reference_hub", hub.DeepClone());
        return merged;
    }

    private static IEnumerable<JsonObject> Targets(JsonObject report) => report["targets"]!.AsArray().Select(t => t!.AsObject());
    /// <summary>A number of a target, whether the tree was built here (long or double values) or parsed from a file.</summary>
    private static double D(JsonObject t, string key)
    {
        var value = t[key]!.AsValue();
        if (value.TryGetValue(out double d)) return d;
        if (value.TryGetValue(out long l)) return l;
        return value.GetValue<System.Text.Json.JsonElement>().GetDouble();
    }
    private static string S(JsonObject t, string key) => t[key]!.GetValue<string>();

    public static string Markdown(JsonObject report)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"# Conversion report\n\nReference: `{report["reference"]}`{HubNote(report)}; evaluated on {report["token_source"]}.\n\n");
        sb.Append("| target | size (bytes) | bits/weight | mean KL | KL p99 | same top-1 | RMS Δp | PPL ratio | prefill tok/s | decode tok/s |\n");
        sb.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var t in Targets(report).OrderBy(t => D(t, "bits_per_weight")))
            sb.Append(inv, $"| {S(t, "name")} | {D(t, "file_bytes"):N0} | {D(t, "bits_per_weight"):F3} | {D(t, "mean_kl"):G4} ± {D(t, "mean_kl_uncertainty"):G2} | {D(t, "kl_p99"):G4} | {D(t, "same_top") * 100:F2} % | {D(t, "rms_delta_p") * 100:F2} % | {D(t, "perplexity_ratio"):F4} | {D(t, "prefill_tokens_per_second"):F1} | {D(t, "decode_tokens_per_second"):F1} |\n");
        var failures = report["gate_failures"]!.AsArray();
        sb.Append(failures.Count == 0 ? "\nEvery gate holds.\n" : "\n" + string.Join("\n", failures.Select(f => "- " + f)) + "\n");
        return sb.ToString();
    }

    /// <summary>" (Hub `ORG/NAME` at commit `C`)" when the report records the reference's Hub snapshot.</summary>
    private static string HubNote(JsonObject report) =>
        report["reference_hub"] is JsonObject hub ? $" (Hub `{hub["repository"]}` at commit `{hub["revision"]}`)" : "";

    public static string Html(JsonObject report)
    {
        var targets = Targets(report).OrderBy(t => D(t, "bits_per_weight")).ToList();
        string Esc(string s) => System.Net.WebUtility.HtmlEncode(s);
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Conversion report</title>\n<style>")
          .Append("body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:right}")
          .Append("td:first-child,th:first-child{text-align:left}.fail{color:#b00}figure{margin:1.5em 0}</style></head><body>\n")
          .Append("<h1>Conversion report</h1>\n<p>Reference <code>").Append(Esc(report["reference"]!.ToString())).Append("</code>, evaluated on ")
          .Append(Esc(report["token_source"]!.ToString())).Append(".</p>\n");
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
        foreach (var f in report["gate_failures"]!.AsArray()) sb.Append("<p class=\"fail\">").Append(Esc(f!.ToString())).Append("</p>\n");
        sb.Append("<figure>").Append(KlChart(targets)).Append("<figcaption>Mean KL against bits per weight; the Pareto front (no target both smaller and closer) is the line.</figcaption></figure>\n");
        sb.Append("<figure>").Append(BarChart(targets, "perplexity_ratio", "perplexity ratio (target / reference)", 1.0)).Append("<figcaption>Perplexity ratio per target (1 = the reference).</figcaption></figure>\n");
        sb.Append("<figure>").Append(BarChart(targets, "decode_tokens_per_second", "decode tokens/s", null)).Append("<figcaption>Decode speed per target on this machine.</figcaption></figure>\n");
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

    /// <summary>How a target built with an importance matrix is named (`compare --imatrix`).</summary>
    public const string ImportanceSuffix = "+imatrix";

    /// <summary>Scatter of mean KL (log scale) against bits per weight, Pareto front drawn, one legend row per target.</summary>
    private static string KlChart(List<JsonObject> targets)
    {
        var inv = CultureInfo.InvariantCulture;
        const double W = 640, Left = 70, Right = 200, Top = 20, Bottom = 50;
        double H = Math.Max(360, Top + 8 + targets.Count * 18 + Bottom);   // tall enough for one legend row per target
        double minB = targets.Min(t => D(t, "bits_per_weight")), maxB = targets.Max(t => D(t, "bits_per_weight"));
        double Log(double kl) => Math.Log10(Math.Max(kl, 1e-9));
        double minK = targets.Min(t => Log(D(t, "mean_kl"))), maxK = targets.Max(t => Log(D(t, "mean_kl")));
        if (maxB - minB < 1e-9) { minB -= 0.5; maxB += 0.5; }
        if (maxK - minK < 1e-9) { minK -= 0.5; maxK += 0.5; }
        double X(double b) => Left + (b - minB) / (maxB - minB) * (W - Left - Right);
        double Y(double kl) => Top + (maxK - Log(kl)) / (maxK - minK) * (H - Top - Bottom);
        var sb = new StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"mean KL against bits per weight\">");
        sb.Append(inv, $"<line x1=\"{Left}\" y1=\"{H - Bottom}\" x2=\"{W - Right}\" y2=\"{H - Bottom}\" stroke=\"#000\"/><line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{H - Bottom}\" stroke=\"#000\"/>");
        sb.Append(inv, $"<text x=\"{(Left + W - Right) / 2}\" y=\"{H - 12}\" text-anchor=\"middle\" font-size=\"12\">bits per weight</text>");
        sb.Append(inv, $"<text x=\"14\" y=\"{(Top + H - Bottom) / 2}\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 {(Top + H - Bottom) / 2})\">mean KL (log scale)</text>");
        sb.Append(inv, $"<text x=\"{Left}\" y=\"{H - Bottom + 16}\" font-size=\"10\" text-anchor=\"middle\">{minB:F2}</text><text x=\"{W - Right}\" y=\"{H - Bottom + 16}\" font-size=\"10\" text-anchor=\"middle\">{maxB:F2}</text>");
        sb.Append(inv, $"<text x=\"{Left - 4}\" y=\"{Top + 4}\" font-size=\"10\" text-anchor=\"end\">{Math.Pow(10, maxK):G2}</text><text x=\"{Left - 4}\" y=\"{H - Bottom}\" font-size=\"10\" text-anchor=\"end\">{Math.Pow(10, minK):G2}</text>");
        // Pareto front: sorted by size, keep targets whose KL is below every smaller one's.
        var front = new List<JsonObject>();
        foreach (var t in targets.OrderBy(t => D(t, "bits_per_weight")))
            if (front.Count == 0 || D(t, "mean_kl") < D(front[^1], "mean_kl")) front.Add(t);
        sb.Append("<polyline class=\"pareto\" fill=\"none\" stroke=\"#888\" stroke-dasharray=\"4 3\" points=\"")
          .Append(string.Join(" ", front.Select(t => string.Create(inv, $"{X(D(t, "bits_per_weight")):F1},{Y(D(t, "mean_kl")):F1}")))).Append("\"/>");
        for (int i = 0; i < targets.Count; i++)
        {
            var t = targets[i];
            string color = Palette[i % Palette.Length];
            // Variants calibrated with an importance matrix are hollow markers, so the pair of a type reads at a glance.
            string paint = S(t, "name").EndsWith(ImportanceSuffix, StringComparison.Ordinal)
                ? $"fill=\"#fff\" stroke=\"{color}\" stroke-width=\"2\" class=\"calibrated\"" : $"fill=\"{color}\"";
            sb.Append(inv, $"<circle cx=\"{X(D(t, "bits_per_weight")):F1}\" cy=\"{Y(D(t, "mean_kl")):F1}\" r=\"5\" {paint}><title>{System.Net.WebUtility.HtmlEncode(S(t, "name"))}</title></circle>");
            // The legend names each point beside the plot, so labels never overlap the points or each other.
            sb.Append(inv, $"<circle cx=\"{W - Right + 16}\" cy=\"{Top + 8 + i * 18}\" r=\"5\" {paint}/><text x=\"{W - Right + 26}\" y=\"{Top + 12 + i * 18}\" font-size=\"11\">{System.Net.WebUtility.HtmlEncode(S(t, "name"))}</text>");
        }
        sb.Append("</svg>");
        return sb.ToString();
    }

    private static string BarChart(List<JsonObject> targets, string key, string label, double? baseline)
    {
        var inv = CultureInfo.InvariantCulture;
        const double W = 640, Left = 140, Bar = 18, Gap = 6, Top = 10;
        double H = Top * 2 + targets.Count * (Bar + Gap) + 20;
        double max = Math.Max(targets.Max(t => D(t, key)), baseline ?? 0) * 1.1;
        if (max <= 0) max = 1;
        var sb = new StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H:F0}\" viewBox=\"0 0 {W} {H:F0}\" role=\"img\" aria-label=\"{label}\">");
        for (int i = 0; i < targets.Count; i++)
        {
            var t = targets[i];
            double y = Top + i * (Bar + Gap), v = D(t, key), w = v / max * (W - Left - 80);
            sb.Append(inv, $"<text x=\"{Left - 6}\" y=\"{y + Bar - 5}\" font-size=\"11\" text-anchor=\"end\">{System.Net.WebUtility.HtmlEncode(S(t, "name"))}</text>");
            sb.Append(inv, $"<rect x=\"{Left}\" y=\"{y}\" width=\"{w:F1}\" height=\"{Bar}\" fill=\"{Palette[i % Palette.Length]}\"/>");
            sb.Append(inv, $"<text x=\"{Left + w + 4:F1}\" y=\"{y + Bar - 5}\" font-size=\"11\">{v:G5}</text>");
        }
        if (baseline is { } b)
        {
            double x = Left + b / max * (W - Left - 80);
            sb.Append(inv, $"<line x1=\"{x:F1}\" y1=\"{Top - 4}\" x2=\"{x:F1}\" y2=\"{H - 16:F0}\" stroke=\"#000\" stroke-dasharray=\"3 3\"/>");
        }
        sb.Append(inv, $"<text x=\"{Left}\" y=\"{H - 4:F0}\" font-size=\"11\">{label}</text></svg>");
        return sb.ToString();
    }
}
