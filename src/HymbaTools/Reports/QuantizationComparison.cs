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
        sb.Append($"# Quantization comparison\n\nReference: `{Reference}`; {Tokens:N0} tokens of {TokenSource} in chunks of {Chunk}.\n\n");
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

    /// <summary>Mean KL (log scale) against bits per weight, one labelled point per artifact.</summary>
    public string ToSvg()
    {
        const int width = 640, height = 400, left = 70, right = 20, top = 30, bottom = 50;
        var points = Rows.Where(r => r.MeanKl > 0).ToList();
        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append($"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n");
        sb.Append($"<text x=\"{width / 2}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">Mean KL vs bits per weight</text>\n");
        if (points.Count > 0)
        {
            double xMin = Math.Floor(points.Min(p => p.BitsPerWeight)) - 0.5, xMax = Math.Ceiling(points.Max(p => p.BitsPerWeight)) + 0.5;
            double yMin = Math.Floor(Math.Log10(points.Min(p => p.MeanKl))), yMax = Math.Ceiling(Math.Log10(points.Max(p => p.MeanKl)));
            if (yMax <= yMin) yMax = yMin + 1;
            double X(double v) => left + (v - xMin) / (xMax - xMin) * (width - left - right);
            double Y(double v) => height - bottom - (Math.Log10(v) - yMin) / (yMax - yMin) * (height - top - bottom);
            sb.Append($"<line x1=\"{left}\" y1=\"{height - bottom}\" x2=\"{width - right}\" y2=\"{height - bottom}\" stroke=\"black\"/>\n");
            sb.Append($"<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{height - bottom}\" stroke=\"black\"/>\n");
            for (double d = yMin; d <= yMax; d++)
                sb.Append($"<text x=\"{left - 6}\" y=\"{F(Y(Math.Pow(10, d)) + 4, "F1")}\" text-anchor=\"end\">1e{d}</text>\n");
            for (double b = Math.Ceiling(xMin); b <= xMax; b += Math.Max(1, Math.Round((xMax - xMin) / 8)))
                sb.Append($"<text x=\"{F(X(b), "F1")}\" y=\"{height - bottom + 18}\" text-anchor=\"middle\">{b}</text>\n");
            sb.Append($"<text x=\"{width / 2}\" y=\"{height - 10}\" text-anchor=\"middle\">bits per weight</text>\n");
            sb.Append($"<text x=\"16\" y=\"{height / 2}\" transform=\"rotate(-90 16 {height / 2})\" text-anchor=\"middle\">mean KL (nats, log scale)</text>\n");
            foreach (var p in points)
            {
                string x = F(X(p.BitsPerWeight), "F1"), y = F(Y(p.MeanKl), "F1");
                sb.Append($"<circle cx=\"{x}\" cy=\"{y}\" r=\"4\" fill=\"#1f77b4\"/><text x=\"{x}\" y=\"{F(Y(p.MeanKl) - 8, "F1")}\" text-anchor=\"middle\">{System.Security.SecurityElement.Escape(p.Label)}</text>\n");
            }
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }
}
