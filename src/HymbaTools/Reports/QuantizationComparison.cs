using HymbaTools.Runtime;
using System.Globalization;
using System.Text;
using System.Text.Json;
using HymbaTools.Verification;

namespace HymbaTools.Reports;

/// <summary>One artifact measured against the reference on the same tokens.</summary>
public sealed record ComparisonRow(string Artifact, string Label, long FileBytes, double BitsPerWeight, double MeanKl, double MaxKl, double Top1Agreement,
    double MaxAbsDiff, double Perplexity, double ReferencePerplexity)
{
    public double PerplexityRatio => Perplexity / ReferencePerplexity;
}

/// <summary>
/// The quantization-level comparison: every artifact's logits against the reference's on the same held-out
/// tokens (mean and max KL divergence per token, top-1 agreement, max |Δlogit|, perplexity), as llama-perplexity's
/// KL-divergence mode reports; rendered as Markdown, JSON (schemas/comparison-report.schema.json) and an SVG plot.
/// </summary>
public sealed record QuantizationComparison(string Reference, string TokenSource, int Tokens, int Chunk, IReadOnlyList<ComparisonRow> Rows)
{
    /// <summary>
    /// Which tokens the figures cover, said in every output: `compare` without --out scores every token of each chunk
    /// (the first ones with little context), while `compare --out`, `convert` and `diff` score the second half of each
    /// window, so their KL and top-1 differ for the same pair.
    /// </summary>
    public const string Scoring = "every token of each chunk scored";

    public static ComparisonRow Measure(IHymbaRunner reference, IHymbaRunner candidate, string label, long fileBytes, double bitsPerWeight, long[] tokens, int chunk, IProgress<(long Done, long Total)>? progress = null)
    {
        int vocab = reference.Config.VocabSize;
        double klSum = 0, klMax = 0, maxAbs = 0, nllRef = 0, nllCand = 0;
        int positions = 0, agree = 0;
        for (int start = 0; start + chunk + 1 <= tokens.Length; start += chunk)
        {
            var input = tokens.AsSpan(start, chunk).ToArray();
            var r = reference.Forward([input]);
            var c = candidate.Forward([input]);
            for (int t = 0; t < chunk; t++)
            {
                var rr = r.Row(0, t);
                var cc = c.Row(0, t);
                double kl = LogitComparison.KlDivergence(rr, cc);
                klSum += kl;
                klMax = Math.Max(klMax, kl);
                if (r.ArgMax(0, t) == c.ArgMax(0, t)) agree++;
                for (int i = 0; i < vocab; i++) maxAbs = Math.Max(maxAbs, Math.Abs(rr[i] - cc[i]));
                int target = (int)tokens[start + t + 1];
                nllRef += NegativeLogLikelihood(rr, target);
                nllCand += NegativeLogLikelihood(cc, target);
                positions++;
            }
            progress?.Report((start / chunk + 1, (tokens.Length - 1) / chunk));
        }
        if (positions == 0) throw new Common.InvalidRequestException("--tokens", $"fewer than {chunk + 1} tokens to compare on");
        return new ComparisonRow(candidate.Description, label, fileBytes, bitsPerWeight, klSum / positions, klMax, (double)agree / positions, maxAbs,
            Math.Exp(nllCand / positions), Math.Exp(nllRef / positions));
    }

    private static double NegativeLogLikelihood(ReadOnlySpan<float> logits, int target)
    {
        float max = float.NegativeInfinity;
        foreach (float v in logits) max = Math.Max(max, v);
        double sum = 0;
        foreach (float v in logits) sum += Math.Exp(v - max);
        return Math.Log(sum) + max - logits[target];
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append($"# Quantization comparison\n\nReference: `{Reference}`; {Tokens:N0} tokens of {TokenSource} in chunks of {Chunk}, {Scoring}.\n\n");
        sb.Append("| artifact | size (bytes) | bits/weight | mean KL | max KL | same top-1 | max abs Δlogit | PPL | PPL ratio |\n");
        sb.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var r in Rows)
            sb.Append($"| {r.Label} | {r.FileBytes:N0} | {F(r.BitsPerWeight, "F3")} | {F(r.MeanKl, "G4")} | {F(r.MaxKl, "G4")} | {F(100 * r.Top1Agreement, "F2")} % | {F(r.MaxAbsDiff, "G4")} | {F(r.Perplexity, "F3")} | {F(r.PerplexityRatio, "F4")} |\n");
        if (Rows.Count > 0) sb.Append($"\nReference perplexity: {F(Rows[0].ReferencePerplexity, "F3")}. KL is KL(reference ‖ artifact) per token in nats.\n");
        return sb.ToString();
    }

    public void WriteJson(Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("reference", Reference);
        w.WriteString("token_source", TokenSource);
        w.WriteNumber("tokens", Tokens);
        w.WriteNumber("chunk", Chunk);
        w.WriteString("scoring", Scoring);
        w.WriteStartArray("artifacts");
        foreach (var r in Rows)
        {
            w.WriteStartObject();
            w.WriteString("label", r.Label);
            w.WriteString("path", r.Artifact);
            w.WriteNumber("file_bytes", r.FileBytes);
            w.WriteNumber("bits_per_weight", r.BitsPerWeight);
            w.WriteNumber("mean_kl", r.MeanKl);
            w.WriteNumber("max_kl", r.MaxKl);
            w.WriteNumber("top1_agreement", r.Top1Agreement);
            w.WriteNumber("max_abs_diff", r.MaxAbsDiff);
            w.WriteNumber("perplexity", r.Perplexity);
            w.WriteNumber("reference_perplexity", r.ReferencePerplexity);
            w.WriteNumber("perplexity_ratio", r.PerplexityRatio);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Mean KL (log scale) against bits per weight, every artifact named beside its point (the chart of the conversion report).</summary>
    public string ToSvg() =>
        Charts.KlChart.Render(Rows.Select(r => Charts.KlPoint.For(r.Label, r.Artifact, r.BitsPerWeight, r.MeanKl)).ToList(), "Mean KL vs bits per weight") + "\n";
}
