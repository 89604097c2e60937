namespace HymbaTools.Verification;

/// <summary>
/// How far candidate logits are from reference logits, whatever produced either (HF forward, GGUF, ONNX).
/// NMSE = MSE / variance of the reference (llama.cpp's conversion check); KL is the mean over positions of
/// KL(softmax(reference) || softmax(candidate)) in nats.
/// </summary>
public sealed record LogitComparison(double MaxAbsDiff, double Nmse, double ArgmaxAgreement, double MeanKl, int Positions, double[] MaxAbsDiffPerPosition)
{
    public static LogitComparison Compare(ReadOnlySpan<float> reference, ReadOnlySpan<float> candidate, int vocab)
    {
        if (reference.Length != candidate.Length || vocab <= 0 || reference.Length % vocab != 0)
            throw new ArgumentException($"logit arrays differ in size ({reference.Length} vs {candidate.Length}, vocab {vocab})");
        int positions = reference.Length / vocab;
        double maxAbs = 0, sumSq = 0, sum = 0, sumRefSq = 0, klTotal = 0;
        int agree = 0;
        var perPosition = new double[positions];
        for (int p = 0; p < positions; p++)
        {
            var r = reference.Slice(p * vocab, vocab);
            var c = candidate.Slice(p * vocab, vocab);
            double rowMax = 0;
            int argR = 0, argC = 0;
            for (int i = 0; i < vocab; i++)
            {
                double d = Math.Abs((double)r[i] - c[i]);
                if (double.IsNaN(d)) d = double.PositiveInfinity;
                if (d > rowMax) rowMax = d;
                sumSq += d * d;
                sum += r[i];
                sumRefSq += (double)r[i] * r[i];
                if (r[i] > r[argR]) argR = i;
                if (c[i] > c[argC]) argC = i;
            }
            perPosition[p] = rowMax;
            maxAbs = Math.Max(maxAbs, rowMax);
            if (argR == argC) agree++;
            klTotal += KlDivergence(r, c);
        }
        long n = reference.Length;
        double mean = sum / n;
        double variance = sumRefSq / n - mean * mean;
        double mse = sumSq / n;
        return new LogitComparison(maxAbs, variance > 0 ? mse / variance : mse, (double)agree / positions, klTotal / positions, positions, perPosition);
    }

    /// <summary>KL(softmax(p) || softmax(q)) for one row of logits, in double with max-subtraction.</summary>
    public static double KlDivergence(ReadOnlySpan<float> p, ReadOnlySpan<float> q)
    {
        double maxP = double.NegativeInfinity, maxQ = double.NegativeInfinity;
        for (int i = 0; i < p.Length; i++) { maxP = Math.Max(maxP, p[i]); maxQ = Math.Max(maxQ, q[i]); }
        var (logZp, logZq) = LogNormalizers(p, maxP, q, maxQ);
        return KlDivergence(p, logZp, q, logZq);
    }

    /// <summary>log Σ exp of both rows, given their maxima (subtracted for range).</summary>
    internal static (double LogZp, double LogZq) LogNormalizers(ReadOnlySpan<float> p, double maxP, ReadOnlySpan<float> q, double maxQ)
    {
        double sumP = 0, sumQ = 0;
        for (int i = 0; i < p.Length; i++) { sumP += Math.Exp(p[i] - maxP); sumQ += Math.Exp(q[i] - maxQ); }
        return (maxP + Math.Log(sumP), maxQ + Math.Log(sumQ));
    }

    /// <summary>KL of the two rows' softmaxes given their log normalizers; clamped at 0 against rounding.</summary>
    internal static double KlDivergence(ReadOnlySpan<float> p, double logZp, ReadOnlySpan<float> q, double logZq)
    {
        double kl = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double lp = p[i] - logZp, lq = q[i] - logZq;
            kl += Math.Exp(lp) * (lp - lq);
        }
        return Math.Max(0, kl);
    }
}
