using System.Globalization;
using System.Text.Json;

namespace HymbaTools.Benchmarks;

/// <summary>
/// llama.cpp's own benchmark (`llama-bench -o json`) read back: prompt processing (pp) and text generation (tg) rates
/// of one GGUF model, the reference `bench onnx --llama-bench` sets the export against. Each test is an object with
/// n_prompt, n_gen and avg_ts (tokens/s); the model's size in bytes is model_size.
/// </summary>
internal static class LlamaBenchResult
{
    /// <summary>llama.cpp's side of the table: pp of the short prompt as a first-call time, pp of the long prompt, tg.</summary>
    public sealed record Figures(string Label, double FirstCallSeconds, double PrefillTokensPerSecond, double DecodeTokensPerSecond, long WeightBytes);

    /// <summary>The arguments that measure the same three figures as <see cref="OnnxBenchmark.Workload"/>, one repetition.</summary>
    public static IEnumerable<string> Arguments(string model, OnnxBenchmark.Workload work, int threads) =>
        ["-m", model, "-t", threads.ToString(CultureInfo.InvariantCulture), "-p", $"{work.PromptTokens},{work.PrefillTokens}",
         "-n", work.DecodeTokens.ToString(CultureInfo.InvariantCulture), "-r", "1", "-o", "json"];

    public static Figures Parse(string json, OnnxBenchmark.Workload work, string label)
    {
        using var doc = JsonDocument.Parse(json);
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new FormatException("llama-bench printed no JSON array");
        double? Rate(int prompt, int generated)
        {
            foreach (var test in doc.RootElement.EnumerateArray())
                if (test.TryGetProperty("n_prompt", out var p) && p.GetInt32() == prompt && test.TryGetProperty("n_gen", out var g) && g.GetInt32() == generated)
                    return test.GetProperty("avg_ts").GetDouble();
            return null;
        }
        double shortPrompt = Rate(work.PromptTokens, 0) ?? throw new FormatException($"llama-bench has no pp{work.PromptTokens} result");
        double longPrompt = Rate(work.PrefillTokens, 0) ?? throw new FormatException($"llama-bench has no pp{work.PrefillTokens} result");
        double generation = Rate(0, work.DecodeTokens) ?? throw new FormatException($"llama-bench has no tg{work.DecodeTokens} result");
        long size = doc.RootElement.EnumerateArray().First().TryGetProperty("model_size", out var s) ? s.GetInt64() : 0;
        return new Figures(label, work.PromptTokens / shortPrompt, longPrompt, generation, size);
    }

    /// <summary>The arguments that measure decode after <see cref="DepthBenchmark.Workload.Depth"/> context tokens (llama-bench's -d), one repetition.</summary>
    public static IEnumerable<string> DepthArguments(string model, DepthBenchmark.Workload work, int threads) =>
        ["-m", model, "-t", threads.ToString(CultureInfo.InvariantCulture), "-p", "0", "-n", work.DecodeTokens.ToString(CultureInfo.InvariantCulture),
         "-d", work.Depth.ToString(CultureInfo.InvariantCulture), "-r", "1", "-o", "json"];

    /// <summary>The decode rate (tokens/s) of the tg test at the workload's depth.</summary>
    public static double ParseDepth(string json, DepthBenchmark.Workload work)
    {
        using var doc = JsonDocument.Parse(json);
        if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new FormatException("llama-bench printed no JSON array");
        foreach (var test in doc.RootElement.EnumerateArray())
            if (test.TryGetProperty("n_gen", out var g) && g.GetInt32() == work.DecodeTokens &&
                test.TryGetProperty("n_depth", out var d) && d.GetInt32() == work.Depth)
                return test.GetProperty("avg_ts").GetDouble();
        throw new FormatException($"llama-bench has no tg{work.DecodeTokens} result at depth {work.Depth} (is it older than its -d option?)");
    }

    /// <summary>
    /// Bytes of llama.cpp's K/V cache after <paramref name="tokens"/> tokens, from the GGUF's shapes: a key and a value
    /// per layer, KV head and token, float16 (llama-bench's default cache type).
    /// </summary>
    public static long CacheBytes(Formats.Gguf.GgufFile model, long tokens)
    {
        string arch = model.Get("general.architecture").Value as string ?? throw new FormatException("general.architecture is not a string");
        long Number(string key) => System.Convert.ToInt64(model.Get($"{arch}.{key}").Value, CultureInfo.InvariantCulture);
        long headDim = model.TryGet($"{arch}.attention.key_length", out var k) ? System.Convert.ToInt64(k.Value, CultureInfo.InvariantCulture) : Number("embedding_length") / Number("attention.head_count");
        long valueDim = model.TryGet($"{arch}.attention.value_length", out var v) ? System.Convert.ToInt64(v.Value, CultureInfo.InvariantCulture) : headDim;
        return Number("block_count") * Number("attention.head_count_kv") * (headDim + valueDim) * 2 * tokens;
    }

    /// <summary>Medians over rounds.</summary>
    public static Figures Median(IReadOnlyList<Figures> rounds) => new(rounds[0].Label,
        BenchTiming.Median([.. rounds.Select(r => r.FirstCallSeconds)]), BenchTiming.Median([.. rounds.Select(r => r.PrefillTokensPerSecond)]),
        BenchTiming.Median([.. rounds.Select(r => r.DecodeTokensPerSecond)]), rounds[0].WeightBytes);
}
