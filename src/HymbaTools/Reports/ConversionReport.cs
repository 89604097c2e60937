using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HymbaTools.Verification;

namespace HymbaTools.Reports;

/// <summary>One converted target: where it went, its size, how it differs from the reference, and how fast it ran in which runtime.</summary>
public sealed record ConversionTarget(string Name, string Path, long FileBytes, double BitsPerWeight, DiffStatistics Diff, double PrefillTokensPerSecond, double DecodeTokensPerSecond, string Runtime);

/// <summary>
/// A gate: a figure of every target held to a bound. It reads the figure from a conversion target (windows scoring
/// their second halves) or from a comparison row (`compare` without --out: chunks scoring every token), so every gate
/// works in both modes.
/// </summary>
public sealed record ConversionGate(string Option, string Figure, double Bound, bool UpperBound, Func<ConversionTarget, double> Value, Func<ComparisonRow, double> RowValue)
{
    /// <summary>The failure message for a target, or null when it holds.</summary>
    public string? Check(ConversionTarget t) => Check(t.Name, Value(t));

    /// <summary>The failure message for a row of `compare`, or null when it holds.</summary>
    public string? Check(ComparisonRow r) => Check(r.Label, RowValue(r));

    private string? Check(string name, double v)
    {
        bool ok = UpperBound ? v <= Bound : v >= Bound;
        return ok ? null : string.Create(CultureInfo.InvariantCulture, $"gate failed: {name}: {Figure} {v:G6} {(UpperBound ? ">" : "<")} {Option} {Bound:G6}");
    }

    public static ConversionGate MaxKl(double bound) => new("--max-kl", "mean KL", bound, true, t => t.Diff.MeanKl.Value, r => r.MeanKl);
    public static ConversionGate MinTop1(double bound) => new("--min-top1", "same top token", bound, false, t => t.Diff.SameTop.Value, r => r.Top1Agreement);
    public static ConversionGate MaxPplRatio(double bound) => new("--max-ppl-ratio", "perplexity ratio", bound, true, t => t.Diff.PerplexityRatio.Value, r => r.PerplexityRatio);
}

/// <summary>
/// What `hymba convert` (or `report merge`) writes: report.json (schemas/conversion-report.schema.json), report.md
/// (a table for a model card) and report.html (<see cref="ConversionReportPage"/>), one self-contained page with the
/// table and inline SVG charts.
/// </summary>
public static class ConversionReport
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <param name="verification">The verify step's record (<see cref="Verification"/>), when the command ran one.</param>
    /// <param name="evaluation">How the targets were scored (<see cref="Evaluation"/>).</param>
    public static JsonObject ToJson(string reference, string tokenSource, IReadOnlyList<ConversionTarget> targets, IReadOnlyList<string> failures,
        JsonObject? verification = null, JsonObject? evaluation = null)
    {
        var report = Build(reference, tokenSource, targets, failures);
        if (evaluation is not null) report.Insert(2, "evaluation", evaluation);
        if (verification is not null) report.Insert(2, "verification", verification);
        // A reference that is a snapshot in the local HuggingFace cache is recorded by its Hub id and commit too.
        string directory = System.IO.Directory.Exists(reference) ? reference : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(reference))!;
        if (Checkpoints.HubSnapshot.FromDirectory(directory) is { } hub)
            report.Insert(0, "reference_hub", new JsonObject { ["repository"] = hub.RepoId, ["revision"] = hub.Commit });
        return report;
    }

    /// <summary>
    /// What the verify step found: golden file or self-checks, how many cases, the worst max abs difference and its
    /// case, the tolerance, and the cases out of it.
    /// </summary>
    public static JsonObject Verification(VerifyReport verify)
    {
        var compared = verify.Cases.Where(c => c.Comparison is not null).ToList();
        var worst = compared.OrderByDescending(c => c.Comparison!.MaxAbsDiff).FirstOrDefault();
        return new JsonObject
        {
            ["mode"] = verify.GoldenPath is null ? "self-checks" : "golden",
            ["golden"] = verify.GoldenPath,
            ["tolerance"] = verify.Tolerance,
            ["passed"] = verify.Passed,
            ["cases"] = (long)verify.Cases.Count,
            ["worst_max_abs_diff"] = worst?.Comparison!.MaxAbsDiff,
            ["worst_case"] = worst is null ? null : $"{worst.Name} ({worst.Kind})",
            ["failed_cases"] = new JsonArray(verify.Cases.Where(c => !c.Passed).Select(c => (JsonNode)FailedCase(c, verify.Tolerance)).ToArray()),
        };
    }

    /// <summary>One failed verify case with its difference and bound ("len17 (forward): max abs diff 0.0123 > tolerance 1e-4; B=1 T=17").</summary>
    public static string FailedCase(VerifyCase c, double tolerance) => c.Comparison is { } cmp
        ? string.Create(CultureInfo.InvariantCulture, $"{c.Name} ({c.Kind}): max abs diff {cmp.MaxAbsDiff:G4} > tolerance {c.Tolerance ?? tolerance:G4}; {c.Detail}")
        : $"{c.Name} ({c.Kind}): {c.Detail}";

    /// <summary>How the targets were scored: whole windows of the evaluation tokens, the second half of each scored.</summary>
    public static JsonObject Evaluation(ReferenceLogits reference) => new()
    {
        ["windows"] = (long)reference.Windows.Count,
        ["window"] = (long)reference.Window,
        ["scored_tokens"] = (long)reference.Windows.Count * (reference.Window - 1 - reference.Window / 2),
        ["scoring"] = "the second half of every window",
    };

    private static JsonObject Build(string reference, string tokenSource, IReadOnlyList<ConversionTarget> targets, IReadOnlyList<string> failures) => new()
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
            ["runtime"] = t.Runtime,
        }).ToArray()),
    };

    /// <summary>Writes report.json, report.md and report.html into <paramref name="directory"/>.</summary>
    public static void Write(string directory, JsonObject report)
    {
        Common.AtomicFile.WriteAllText(System.IO.Path.Combine(directory, "report.json"), report.ToJsonString(Indented) + "\n");
        Common.AtomicFile.WriteAllText(System.IO.Path.Combine(directory, "report.md"), Markdown(report));
        Common.AtomicFile.WriteAllText(System.IO.Path.Combine(directory, "report.html"), ConversionReportPage.Html(report));
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
        if (first["evaluation"] is { } evaluation) merged.Insert(2, "evaluation", evaluation.DeepClone());
        if (first["verification"] is { } verification) merged.Insert(2, "verification", verification.DeepClone());
        if (first["reference_hub"] is { } hub) merged.Insert(0, "reference_hub", hub.DeepClone());
        return merged;
    }

    internal static IEnumerable<JsonObject> Targets(JsonObject report) => report["targets"]!.AsArray().Select(t => t!.AsObject());
    /// <summary>A number of a target, whether the tree was built here (long or double values) or parsed from a file.</summary>
    internal static double D(JsonObject t, string key)
    {
        var value = t[key]!.AsValue();
        if (value.TryGetValue(out double d)) return d;
        if (value.TryGetValue(out long l)) return l;
        return value.GetValue<System.Text.Json.JsonElement>().GetDouble();
    }
    internal static string S(JsonObject t, string key) => t[key]!.GetValue<string>();

    /// <summary>The runtime that measured a target's speed; reports from before it was recorded name it by the target's format.</summary>
    internal static string Runtime(JsonObject t) =>
        t["runtime"]?.GetValue<string>() ?? (S(t, "name").StartsWith("onnx:", StringComparison.Ordinal) ? "ONNX Runtime" : "TorchSharp f32");

    public static string Markdown(JsonObject report)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"# Conversion report\n\nReference: `{report["reference"]}`{HubNote(report)}; evaluated on {report["token_source"]}{EvaluationNote(report)}.\n\n");
        if (VerificationNote(report) is { } verified) sb.Append(verified).Append("\n\n");
        sb.Append("| target | size (bytes) | bits/weight | mean KL | KL p99 | same top-1 | RMS Δp | PPL ratio | prefill tok/s | decode tok/s | runtime |\n");
        sb.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        foreach (var t in Targets(report).OrderBy(t => D(t, "bits_per_weight")))
            sb.Append(inv, $"| {S(t, "name")} | {D(t, "file_bytes"):N0} | {D(t, "bits_per_weight"):F3} | {D(t, "mean_kl"):G4} ± {D(t, "mean_kl_uncertainty"):G2} | {D(t, "kl_p99"):G4} | {D(t, "same_top") * 100:F2} % | {D(t, "rms_delta_p") * 100:F2} % | {D(t, "perplexity_ratio"):F4} | {D(t, "prefill_tokens_per_second"):F1} | {D(t, "decode_tokens_per_second"):F1} | {Runtime(t)} |\n");
        var failures = report["gate_failures"]!.AsArray();
        sb.Append(failures.Count == 0 ? "\nEvery gate holds.\n" : "\n" + string.Join("\n", failures.Select(f => "- " + f)) + "\n");
        return sb.ToString();
    }

    /// <summary>": N windows of W tokens, the second half of each scored (S tokens)" when the report records it.</summary>
    internal static string EvaluationNote(JsonObject report) =>
        report["evaluation"] is JsonObject e
            ? string.Create(CultureInfo.InvariantCulture, $": {D(e, "windows"):0} windows of {D(e, "window"):0} tokens, {e["scoring"]} ({D(e, "scored_tokens"):N0} scored tokens)")
            : "";

    /// <summary>The verify step in one sentence ("Verification: golden F, 9 cases, worst max abs diff 7.2e-06 (len17 (forward)), tolerance 0.0001: passed."), or null.</summary>
    internal static string? VerificationNote(JsonObject report)
    {
        if (report["verification"] is not JsonObject v) return null;
        var inv = CultureInfo.InvariantCulture;
        string what = v["mode"]?.GetValue<string>() == "golden" ? $"golden `{v["golden"]}`" : "self-checks";
        string worst = v["worst_max_abs_diff"] is null ? "" : string.Create(inv, $", worst max abs diff {D(v, "worst_max_abs_diff"):G4} ({v["worst_case"]})");
        var failed = v["failed_cases"]?.AsArray() ?? [];
        return string.Create(inv, $"Verification: {what}, {D(v, "cases"):0} cases{worst}, tolerance {D(v, "tolerance"):G4}: ") +
               (v["passed"]!.GetValue<bool>() ? "passed." : "FAILED: " + string.Join("; ", failed.Select(f => f!.ToString())) + ".");
    }

    /// <summary>" (Hub `ORG/NAME` at commit `C`)" when the report records the reference's Hub snapshot.</summary>
    internal static string HubNote(JsonObject report) =>
        report["reference_hub"] is JsonObject hub ? $" (Hub `{hub["repository"]}` at commit `{hub["revision"]}`)" : "";

    /// <summary>How a target built with an importance matrix is named (`compare --imatrix`).</summary>
    public const string ImportanceSuffix = "+imatrix";
}
