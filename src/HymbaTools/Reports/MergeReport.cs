using HymbaTools.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using HymbaTools.Model;
using HymbaTools.Verification;

namespace HymbaTools.Reports;

/// <summary>What `merge-kv` saved (cache bytes at each length, as `inspect` computes them) and what it cost (logits vs the original).</summary>
public sealed record MergeReport(string Output, IReadOnlyList<IReadOnlyList<int>> Groups, IReadOnlyList<(long Tokens, long Before, long After)> Cache,
    LogitComparison Accuracy, int EvaluatedTokens, string TokenSource)
{
    /// <summary>
    /// The report of a finished merge: cache sizes from both configs, and the accuracy cost measured by running the
    /// original and the merged checkpoint on the same tokens.
    /// </summary>
    public static MergeReport Measure(HymbaCheckpoint original, Merge.KvMerge.Result result, IReadOnlyList<long> sequenceLengths, long[] ids, string tokenSource)
    {
        LogitComparison accuracy;
        using (var before = HymbaModel.Load(new CheckpointTensorSource(original)))
        using (var mergedCheckpoint = HymbaCheckpoint.Open(result.Directory))
        using (var after = HymbaModel.Load(new CheckpointTensorSource(mergedCheckpoint)))
        {
            var a = before.Forward([ids]);
            accuracy = LogitComparison.Compare(a.Data, after.Forward([ids]).Data, a.Vocab);
        }
        return Create(Path.GetFullPath(result.Directory), result.Before, result.After, sequenceLengths, accuracy, ids.Length, tokenSource);
    }

    public static MergeReport Create(string output, HymbaConfig before, HymbaConfig after, IReadOnlyList<long> sequenceLengths,
        LogitComparison accuracy, int evaluatedTokens, string tokenSource) =>
        new(output, after.KvReuseGroups ?? [], sequenceLengths.Select(s => (s, CacheSize.Compute(before, s).Total, CacheSize.Compute(after, s).Total)).ToList(),
            accuracy, evaluatedTokens, tokenSource);

    /// <summary>Which tokens the figures cover (`diff` scores the second half of each window instead, so its KL for the same pair differs).</summary>
    public const string Scoring = "one sequence, every token scored";

    public string ToText()
    {
        var sb = new StringBuilder();
        sb.Append($"wrote {Output}\nkv_reuse_group: {JsonSerializer.Serialize(Groups)}\n\n");
        var cache = new TextTable("tokens S", "cache before", "cache after", "saved", "saved %");
        foreach (var (s, b, a) in Cache)
            cache.Add(s, b, a, b - a, (100.0 * (b - a) / b).ToString("F1", CultureInfo.InvariantCulture) + "%");
        sb.Append("Inference cache (").Append(CacheSize.Convention).Append(")\n").Append(cache).Append('\n');
        sb.Append($"Accuracy cost over {EvaluatedTokens} tokens ({TokenSource}; {Scoring}), merged vs original logits:\n");
        sb.Append($"  max |diff| {Accuracy.MaxAbsDiff:G4}, NMSE {Accuracy.Nmse:G4}, mean KL {Accuracy.MeanKl:G4} nats, argmax agreement {Accuracy.ArgmaxAgreement:P1}\n");
        return sb.ToString();
    }

    public void WriteJson(Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("output", Output);
        w.WritePropertyName("kv_reuse_group");
        JsonSerializer.Serialize(w, Groups);
        w.WriteStartObject("cache_bytes_before");
        foreach (var (s, b, _) in Cache) w.WriteNumber(s.ToString(CultureInfo.InvariantCulture), b);
        w.WriteEndObject();
        w.WriteStartObject("cache_bytes_after");
        foreach (var (s, _, a) in Cache) w.WriteNumber(s.ToString(CultureInfo.InvariantCulture), a);
        w.WriteEndObject();
        w.WriteStartObject("accuracy");
        w.WriteNumber("tokens", EvaluatedTokens);
        w.WriteString("token_source", TokenSource);
        w.WriteString("scoring", Scoring);
        w.WriteNumber("max_abs_diff", Accuracy.MaxAbsDiff);
        w.WriteNumber("nmse", Accuracy.Nmse);
        w.WriteNumber("mean_kl", Accuracy.MeanKl);
        w.WriteNumber("argmax_agreement", Accuracy.ArgmaxAgreement);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
