using System.Diagnostics;
using GenAi = Microsoft.ML.OnnxRuntimeGenAI;

namespace HymbaTools.Benchmarks;

/// <summary>
/// The export as deployers run it: onnxruntime-genai's Model and Generator, greedy, batch 1, timed as
/// <see cref="OnnxBenchmark"/> times hymba's runner (the first AppendTokens of the short prompt, GenerateNextToken per
/// decoded token, one AppendTokens of the long prompt), so the two sides are the same work.
/// </summary>
internal sealed class GenAiBenchmark : IDisposable
{
    private readonly GenAi.Config _config;
    private readonly GenAi.Model _model;

    public GenAiBenchmark(string exportDirectory, int threads)
    {
        _config = new GenAi.Config(exportDirectory);
        // The same thread count as hymba's session (genai's default is every core).
        _config.Overlay("{\"model\": {\"decoder\": {\"session_options\": {\"intra_op_num_threads\": " + threads.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}}}}");
        _model = new GenAi.Model(_config);
    }

    public OnnxBenchmark.Sample Measure(OnnxBenchmark.Workload work)
    {
        double firstCall, decode;
        using (var generator = NewGenerator(work.PromptTokens + work.DecodeTokens + 1))
        {
            var clock = Stopwatch.StartNew();
            generator.AppendTokens(Ints(work.Prompt));
            firstCall = clock.Elapsed.TotalSeconds;
            clock.Restart();
            for (int i = 0; i < work.DecodeTokens; i++)
            {
                Common.Interruption.ThrowIfRequested();
                generator.GenerateNextToken();
            }
            decode = work.DecodeTokens / clock.Elapsed.TotalSeconds;
        }
        using (var generator = NewGenerator(work.PrefillTokens + 1))
        {
            var clock = Stopwatch.StartNew();
            generator.AppendTokens(Ints(work.Prefill));
            return new OnnxBenchmark.Sample(firstCall, work.PrefillTokens / clock.Elapsed.TotalSeconds, decode);
        }
    }

    /// <summary>A greedy generator for sequences up to <paramref name="maxLength"/> tokens.</summary>
    public GenAi.Generator NewGenerator(int maxLength)
    {
        using var parameters = new GenAi.GeneratorParams(_model);
        parameters.SetSearchOption("max_length", maxLength);
        parameters.SetSearchOption("do_sample", false);
        return new GenAi.Generator(_model, parameters);
    }

    private static int[] Ints(long[] ids) => [.. ids.Select(id => (int)id)];

    public void Dispose()
    {
        _model.Dispose();
        _config.Dispose();
    }
}
