using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>
/// `generate` at the model's context (max_position_embeddings): prompt + --max-new-tokens past it is known before the
/// first token; generation runs up to the context with one warning line and exits 0, on a checkpoint, a GGUF file and
/// an ONNX export alike; a prompt that fills the context is refused with exit 2. The example model with its context cut
/// to 48 tokens, so that the limit is reached in a second.
/// </summary>
public partial class GenerateContextLimitTests : IDisposable
{
    private const int Context = 48;
    private const string Prompt = "Anne Elliot had been walking with Captain Wentworth, and";
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [GeneratedRegex("\"max_position_embeddings\": \\d+")]
    private static partial Regex MaxPositions();

    private string ShortContextCheckpoint()
    {
        string checkpoint = _dir.CopyOf(Path.Combine(AppContext.BaseDirectory, "example-model"), "short-context");
        string config = Path.Combine(checkpoint, "config.json");
        File.WriteAllText(config, MaxPositions().Replace(File.ReadAllText(config), $"\"max_position_embeddings\": {Context}"));
        return checkpoint;
    }

    [Fact]
    public void A_request_past_the_context_generates_up_to_it_with_one_warning_for_every_artifact_kind()
    {
        string checkpoint = ShortContextCheckpoint();
        string gguf = _dir.File("short.gguf"), onnx = _dir.File("short-onnx");
        Assert.Equal(0, CliRunner.Run("quantize", checkpoint, "--type", "q8_0", "-o", gguf, "--quiet").ExitCode);
        Assert.Equal(0, CliRunner.Run("export", checkpoint, "--format", "onnx", "--type", "int4", "-o", onnx, "--quiet").ExitCode);
        foreach (string artifact in new[] { checkpoint, gguf, onnx })
        {
            var run = CliRunner.Run("generate", artifact, "--prompt", Prompt, "--max-new-tokens", "100000", "--temperature", "0", "--json");
            Assert.True(run.ExitCode == 0, $"{artifact}: {run.Stderr}");
            var report = JsonNode.Parse(run.Stdout)!;
            int prompt = report["prompt_ids"]!.AsArray().Count, generated = report["generated_ids"]!.AsArray().Count;
            Assert.False(report["stopped_at_eos"]!.GetValue<bool>(), artifact);
            Assert.True(report["stopped_at_context"]!.GetValue<bool>(), artifact);
            Assert.Equal(Context - prompt, generated);
            var warnings = run.Stderr.Split('\n').Where(l => l.StartsWith("warning:", StringComparison.Ordinal)).ToList();
            Assert.Equal([$"warning: --max-new-tokens 100000: the prompt's {prompt} tokens and 100000 new ones exceed the model's context of {Context} tokens; generating at most {Context - prompt}"], warnings);
            Assert.DoesNotContain("error", run.Stderr, StringComparison.Ordinal);
            Assert.Contains($"stopped at the context of {Context} tokens", run.Stderr, StringComparison.Ordinal);

            // Within the context: no warning, and the same first tokens.
            var within = CliRunner.Run("generate", artifact, "--prompt", Prompt, "--max-new-tokens", "3", "--temperature", "0", "--json");
            Assert.True(within.ExitCode == 0, within.Stderr);
            Assert.DoesNotContain("warning", within.Stderr, StringComparison.Ordinal);
            var first = JsonNode.Parse(within.Stdout)!;
            Assert.False(first["stopped_at_context"]!.GetValue<bool>());
            Assert.Equal(report["generated_ids"]!.AsArray().Take(3).Select(n => (long)n!), first["generated_ids"]!.AsArray().Select(n => (long)n!));
        }
    }

    [Fact]
    public void A_prompt_that_fills_the_context_is_refused_before_the_first_token()
    {
        string checkpoint = ShortContextCheckpoint();
        string onnx = _dir.File("short-onnx");
        Assert.Equal(0, CliRunner.Run("export", checkpoint, "--format", "onnx", "--type", "int4", "-o", onnx, "--quiet").ExitCode);
        string prompt = string.Join(" ", Enumerable.Repeat(Prompt, 6));
        foreach (string artifact in new[] { checkpoint, onnx })
        {
            var run = CliRunner.Run("generate", artifact, "--prompt", prompt, "--max-new-tokens", "5");
            Assert.Equal(2, run.ExitCode);
            Assert.Equal("", run.Stdout);
            Assert.Matches($"^error: --prompt: \\d+ tokens leave no room in the model's context of {Context} tokens", run.Stderr);
            Assert.Single(run.Stderr.TrimEnd().Split('\n'));
        }
    }
}
