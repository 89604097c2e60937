using HymbaTools.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;


namespace HymbaTools.Verification;

/// <param name="Tolerance">The bound this case's max abs diff was held to, when it differs from the report's (null: the report's, or not gated).</param>
public sealed record VerifyCase(string Name, string Kind, LogitComparison? Comparison, bool Passed, string Detail, double? Tolerance = null);

/// <summary>The outcome of `hymba verify`: one row per case, overall pass/fail, renderable as text or JSON.</summary>
public sealed record VerifyReport(string Artifact, string? GoldenPath, double Tolerance, IReadOnlyList<VerifyCase> Cases, string? LogitsSummary)
{
    public bool Passed => Cases.All(c => c.Passed);

    private static string G(double v) => v.ToString("0.###e+0", CultureInfo.InvariantCulture);

    public string ToText()
    {
        var sb = new StringBuilder();
        // Cases held to another bound are named in the header, so that it never states a tolerance a row did not use.
        var others = Cases.Where(c => c.Tolerance is { } t && t != Tolerance).GroupBy(c => c.Tolerance!.Value)
            .Select(g => $"{G(g.Key)} for {string.Join(", ", g.Select(c => c.Name))}").ToList();
        sb.Append($"verify {Artifact}{(GoldenPath is null ? " (self-checks, no golden file)" : $" against {GoldenPath}")}, tolerance {G(Tolerance)} max abs" +
                  (others.Count > 0 ? $" ({string.Join("; ", others)})" : "") + "\n\n");
        var table = new TextTable("case", "kind", "max |diff|", "NMSE", "argmax agree", "result", "detail");
        foreach (var c in Cases)
            table.Add(c.Name, c.Kind, c.Comparison is null ? "-" : G(c.Comparison.MaxAbsDiff), c.Comparison is null ? "-" : G(c.Comparison.Nmse),
                c.Comparison is null ? "-" : c.Comparison.ArgmaxAgreement.ToString("P1", CultureInfo.InvariantCulture), c.Passed ? "pass" : "FAIL", c.Detail);
        sb.Append(table);
        if (LogitsSummary is not null) sb.Append('\n').Append(LogitsSummary).Append('\n');
        sb.Append($"\n{(Passed ? "PASSED" : "FAILED")}: {Cases.Count(c => c.Passed)} of {Cases.Count} cases within tolerance\n");
        return sb.ToString();
    }

    public void WriteJson(Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("artifact", Artifact);
        if (GoldenPath is null) w.WriteNull("golden"); else w.WriteString("golden", GoldenPath);
        w.WriteNumber("tolerance", Tolerance);
        w.WriteBoolean("passed", Passed);
        w.WriteStartArray("cases");
        foreach (var c in Cases)
        {
            w.WriteStartObject();
            w.WriteString("name", c.Name);
            w.WriteString("kind", c.Kind);
            if (c.Comparison is { } cmp)
            {
                w.WriteNumber("max_abs_diff", cmp.MaxAbsDiff);
                w.WriteNumber("nmse", cmp.Nmse);
                w.WriteNumber("argmax_agreement", cmp.ArgmaxAgreement);
                w.WriteNumber("mean_kl", cmp.MeanKl);
                w.WriteNumber("positions", cmp.Positions);
                if (c.Kind.StartsWith("decode", StringComparison.Ordinal))
                {
                    w.WriteStartArray("per_step_max_abs_diff");
                    foreach (double d in cmp.MaxAbsDiffPerPosition) w.WriteNumberValue(d);
                    w.WriteEndArray();
                }
            }
            if (c.Tolerance is { } own) w.WriteNumber("tolerance", own);
            w.WriteBoolean("passed", c.Passed);
            w.WriteString("detail", c.Detail);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (LogitsSummary is not null) w.WriteString("logits_summary", LogitsSummary);
        w.WriteEndObject();
    }
}
