using System.Text.Json.Nodes;
using HymbaTools.Formats.Onnx;
using HymbaTools.Model;
using HymbaTools.Runtime;
using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;
using HymbaTools.Verification;
using GenAi = Microsoft.ML.OnnxRuntimeGenAI;

namespace HymbaTools.Tests.Formats;

/// <summary>
/// The export as deployers run it: onnxruntime-genai 0.18's Model and Generator load the directory as written (no
/// second layout, no edited config) and decode with it, greedy and sampled, at batch 1.
/// </summary>
public class OnnxGenAiTests : IDisposable
{
    private static readonly string ExampleModel = Path.Combine(AppContext.BaseDirectory, "example-model");
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private string Export(string checkpoint, OnnxExportType type)
    {
        string output = _dir.File($"{Path.GetFileName(checkpoint)}-{type}");
        if (Directory.Exists(output)) return output;
        var run = CliRunner.Run("export", checkpoint, "--format", "onnx", "--type", type.ToString().ToLowerInvariant(), "-o", output, "-q");
        Assert.True(run.ExitCode == 0, run.Stderr);
        return output;
    }

    private static string Checkpoint(string name) => name == "example-model" ? ExampleModel : Fixtures.Path_(name);

    /// <summary>genai's greedy continuation of a prompt (its search stops at max_length or EOS).</summary>
    private static long[] GenAiGreedy(GenAi.Model model, long[] prompt, int newTokens)
    {
        using var parameters = new GenAi.GeneratorParams(model);
        parameters.SetSearchOption("max_length", prompt.Length + newTokens);
        parameters.SetSearchOption("do_sample", false);
        using var generator = new GenAi.Generator(model, parameters);
        generator.AppendTokens(prompt.Select(id => (int)id).ToArray());
        while (!generator.IsDone()) generator.GenerateNextToken();
        return [.. generator.GetSequence(0).ToArray().Skip(prompt.Length).Select(id => (long)id)];
    }

    /// <summary>
    /// hymba's own decode loop on the same export, greedy (what `hymba generate --temperature 0` does), stopping at EOS as
    /// genai does; with each choice's margin over the runner-up logit.
    /// </summary>
    private static (long[] Ids, double[] Margins) HymbaGreedy(OnnxRunner runner, long[] prompt, int newTokens)
    {
        using var session = runner.StartDecode(1, DecodeWindowMode.MatchFullForward);
        var logits = session.Step([prompt]);
        var generated = new List<long>();
        var margins = new List<double>();
        while (generated.Count < newTokens)
        {
            var row = logits.Row(0, logits.Tokens - 1);
            int next = Argmax(row);
            if (next == runner.Config.EosTokenId) break;
            float best = row[next], second = float.NegativeInfinity;
            for (int i = 0; i < row.Length; i++) if (i != next && row[i] > second) second = row[i];
            generated.Add(next);
            margins.Add(best - second);
            logits = session.Step([[next]]);
        }
        return ([.. generated], [.. margins]);
    }

    private static int Argmax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
        return best;
    }

    /// <summary>A prompt of random ids (never BOS/EOS), long enough for sliding layers to drop keys during generation.</summary>
    private static long[] Prompt(HymbaConfig c, int seed, int length)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, length).Select(_ => (long)rng.Next(3, c.VocabSize))];
    }

    [Theory]
    [InlineData("tiny-a", OnnxExportType.F32)]
    [InlineData("tiny-a", OnnxExportType.Int4)]
    [InlineData("tiny-b", OnnxExportType.F32)]
    [InlineData("tiny-b", OnnxExportType.Int4)]
    [InlineData("example-model", OnnxExportType.F32)]
    [InlineData("example-model", OnnxExportType.Int4)]
    public void Genai_loads_the_export_and_decodes_greedily_as_hymba_does(string checkpoint, OnnxExportType type)
    {
        string dir = Export(Checkpoint(checkpoint), type);
        using var runner = OnnxRunner.Open(dir);
        using var model = new GenAi.Model(dir);
        var c = runner.Config;
        int window = c.SlidingWindow ?? 16;
        foreach (var (seed, length) in new[] { (1, 1), (2, 5), (3, window + 3) })
        {
            var prompt = Prompt(c, seed, length);
            int newTokens = 2 * window + 5;
            var (expected, margins) = HymbaGreedy(runner, prompt, newTokens);
            var actual = GenAiGreedy(model, prompt, newTokens);
            // The same graph and state in both: the same logits up to the order of float sums (and, with int8
            // activations, their rounding). A random-weight fixture can meet a near-tie that this flips; then the runs
            // part there, and only there, and the margin must be within that noise.
            int diverge = Enumerable.Range(0, Math.Min(expected.Length, actual.Length)).FirstOrDefault(k => expected[k] != actual[k], -1);
            if (diverge < 0) Assert.Equal(expected, actual);
            else Assert.True(margins[diverge] <= (runner.ConsistencyTolerance ?? 1e-4),
                $"seed {seed}: genai chose {actual[diverge]} where hymba chose {expected[diverge]} (step {diverge}) by a margin of {margins[diverge]:G3}");
        }
    }

    [Fact]
    public void Genai_greedy_ids_equal_hymba_generate_json()
    {
        foreach (var type in new[] { OnnxExportType.F32, OnnxExportType.Int4 })
        {
            string dir = Export(ExampleModel, type);
            var run = CliRunner.Run("generate", dir, "--prompt", "It was a truth universally acknowledged", "--temperature", "0", "--max-new-tokens", "40", "--json");
            Assert.True(run.ExitCode == 0, run.Stderr);
            var report = JsonNode.Parse(run.Stdout)!;
            long[] prompt = [.. report["prompt_ids"]!.AsArray().Select(n => n!.GetValue<long>())];
            long[] generated = [.. report["generated_ids"]!.AsArray().Select(n => n!.GetValue<long>())];
            Assert.Equal(40, generated.Length);
            using var model = new GenAi.Model(dir);
            Assert.Equal(generated, GenAiGreedy(model, prompt, 40));
        }
    }

    /// <summary>
    /// The fixtures' generation cases: wherever genai's tokens so far equal the official ones, its next token is the
    /// argmax of the official full-forward logits (the export follows the full forward; the official generate() keeps
    /// one key fewer in sliding caches, so its own choice can differ on a checkpoint).
    /// </summary>
    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void Genai_follows_the_official_full_forward_on_the_golden_generations(string fixture)
    {
        string checkpoint = Fixtures.Path_(fixture);
        string dir = Export(checkpoint, OnnxExportType.F32);
        using var model = new GenAi.Model(dir);
        var config = HymbaConfig.Load(Path.Combine(checkpoint, "config.json"));
        var golden = GoldenData.Load(Fixtures.Golden(checkpoint), config.VocabSize);
        Assert.NotEmpty(golden.DecodeCases);
        int compared = 0;
        foreach (var dc in golden.DecodeCases)
        {
            var genai = GenAiGreedy(model, dc.PromptIds, dc.GeneratedIds.Length);
            for (int step = 0; step < genai.Length && genai.AsSpan(0, step).SequenceEqual(dc.GeneratedIds.AsSpan(0, step)); step++, compared++)
                Assert.Equal(Argmax(dc.FullForwardLogits.AsSpan(step * dc.Vocab, dc.Vocab)), genai[step]);
        }
        Assert.True(compared >= golden.DecodeCases.Count, "no step was compared");
    }

    /// <summary>genai's logits output after a prompt equals hymba's full forward of it (float32 export).</summary>
    [Theory]
    [InlineData("tiny-a")]
    [InlineData("tiny-b")]
    public void Genai_logits_equal_one_forward_over_the_sequence(string fixture)
    {
        string dir = Export(Fixtures.Path_(fixture), OnnxExportType.F32);
        using var runner = OnnxRunner.Open(dir);
        var prompt = Prompt(runner.Config, 9, 2 * (runner.Config.SlidingWindow ?? 8) + 3);
        var expected = runner.Forward([prompt]);
        using var model = new GenAi.Model(dir);
        using var parameters = new GenAi.GeneratorParams(model);
        parameters.SetSearchOption("max_length", prompt.Length + 4);
        using var generator = new GenAi.Generator(model, parameters);
        generator.AppendTokens(prompt.Select(id => (int)id).ToArray());
        using var logits = generator.GetOutput(HymbaOnnxNames.Logits);
        var data = logits.GetData<float>().ToArray();
        int vocab = runner.Config.VocabSize;
        // genai may keep only the last position's row; compare what it returns against the same rows.
        int rows = data.Length / vocab;
        var cmp = LogitComparison.Compare(expected.Data.AsSpan((prompt.Length - rows) * vocab, rows * vocab), data, vocab);
        Assert.True(cmp.MaxAbsDiff <= 1e-5, $"genai vs hymba: {cmp.MaxAbsDiff:E3}");
    }

    /// <summary>
    /// The state genai holds (its presents, allocated from genai_config.json's sliding_window section and the graph's
    /// input types) and the state hymba's runner feeds back are the same bytes, and what inspect and the formula say:
    /// before the window fills, at the bound, and past it (sliding groups stop growing), for both K/V element types.
    /// </summary>
    [Theory]
    [InlineData(OnnxStateType.F16)]
    [InlineData(OnnxStateType.F32)]
    public void Genai_and_hymba_hold_the_state_bytes_inspect_reports(OnnxStateType keyValueType)
    {
        string dir = _dir.File($"state-{keyValueType}");
        var run = CliRunner.Run("export", Fixtures.TinyB, "--state-dtype", keyValueType.ToString().ToLowerInvariant(), "-o", dir, "-q");
        Assert.True(run.ExitCode == 0, run.Stderr);
        using var runner = OnnxRunner.Open(dir);
        var c = runner.Config;
        long most = runner.State.SlidingCacheKeys!.Value;
        using var model = new GenAi.Model(dir);
        foreach (int tokens in new[] { 3, (int)most, 3 * (int)most })
        {
            var prompt = Prompt(c, tokens, tokens);
            long expected = OnnxStateSize.At(c, keyValueType, tokens);

            using var parameters = new GenAi.GeneratorParams(model);
            parameters.SetSearchOption("max_length", tokens + 2);
            using var generator = new GenAi.Generator(model, parameters);
            generator.AppendTokens(prompt.Select(id => (int)id).ToArray());
            long genaiBytes = runner.State.States.Sum(s =>
            {
                using var present = generator.GetOutput(s.Present);
                return present.NumElements() * s.ElementBytes;
            });
            Assert.Equal(expected, genaiBytes);

            using var session = (OnnxDecodeSession)runner.StartDecode(1, DecodeWindowMode.MatchFullForward);
            session.Step([prompt]);
            Assert.Equal(expected, session.StateBytes);
            var inspect = HymbaTools.Reports.OnnxInspect.For(dir, [tokens]);
            Assert.Contains(inspect.Container!, kv => kv.Item1.StartsWith($"state bytes at {tokens:N0} text tokens", StringComparison.Ordinal) && kv.Item2.StartsWith($"{expected:N0} ", StringComparison.Ordinal));
        }
        Assert.Equal(OnnxStateSize.At(c, keyValueType, most), OnnxStateSize.At(c, keyValueType, 3 * most) - (3 * most - most) * GlobalBytesPerToken(runner));
    }

    /// <summary>State bytes one more text token adds once sliding groups are full: the global owners' key and value entries.</summary>
    private static long GlobalBytesPerToken(OnnxRunner runner) =>
        runner.State.States.Where(s => s.IsKeyOrValue && s.MaxKeys is null).Sum(s => (long)runner.Config.NumKvHeads * runner.State.EntryWidth * s.ElementBytes);

    [Fact]
    public void Genai_samples_until_max_length_or_eos()
    {
        string dir = Export(ExampleModel, OnnxExportType.Int4);
        using var model = new GenAi.Model(dir);
        var config = HymbaConfig.Load(Path.Combine(dir, "config.json"));
        var sequences = new List<int[]>();
        foreach (int seed in new[] { 1, 2, 3 })
        {
            using var parameters = new GenAi.GeneratorParams(model);
            parameters.SetSearchOption("max_length", 200);
            parameters.SetSearchOption("do_sample", true);
            parameters.SetSearchOption("top_k", 40);
            parameters.SetSearchOption("top_p", 0.95);
            parameters.SetSearchOption("temperature", 0.8);
            parameters.SetSearchOption("random_seed", seed);
            using var generator = new GenAi.Generator(model, parameters);
            generator.AppendTokens([1, 599, 307, 261]);
            while (!generator.IsDone()) generator.GenerateNextToken();
            var sequence = generator.GetSequence(0).ToArray();
            // It stops at max_length, or earlier at EOS (which genai does not append).
            Assert.InRange(sequence.Length, 5, 200);
            Assert.DoesNotContain(config.EosTokenId, sequence[4..]);
            Assert.All(sequence, id => Assert.InRange(id, 0, config.VocabSize - 1));
            sequences.Add(sequence);
        }
        Assert.True(sequences.Select(s => string.Join(",", s)).Distinct().Count() > 1, "three seeds sampled the same text");
    }
}
