using System.Text;
using System.Text.Json;
using HymbaTools.Cli;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>
/// Issue 20 (items 2-5): what a new user runs into. Options are checked before any work, an unknown option is one line
/// naming the closest, the wrong kind of input is named as such, GGUF files carry their own tokenizer into evaluation,
/// text files are UTF-8 unless an encoding is named.
/// </summary>
public class InputCheckTests : IDisposable
{
    private static readonly string ExampleModel = Path.Combine(AppContext.BaseDirectory, "example-model");
    private static readonly string ExampleTokenizer = Path.Combine(AppContext.BaseDirectory, "example-tokenizer");
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static string[] ErrorLines(CliRunner.Result r) => r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private static void AssertOneLineError(CliRunner.Result r, string expectedStart)
    {
        Assert.True(r.ExitCode == ExitCodes.InvalidInput, $"exit {r.ExitCode}: {r.Stderr}");
        var errors = ErrorLines(r).Where(l => !l.StartsWith("note:", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 1, r.Stderr);
        Assert.StartsWith(expectedStart, errors[0], StringComparison.Ordinal);
    }

    private string Gguf(string type, string? name = null)
    {
        string path = _dir.File(name ?? $"{type}.gguf");
        var r = CliRunner.Run("quantize", ExampleModel, "--type", type, "-o", path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return path;
    }

    [Fact]
    public void A_mistyped_option_is_one_line_naming_the_closest_option()
    {
        var r = CliRunner.Run("quantize", Fixtures.TinyA, "--tpye", "q8_0", "-o", _dir.File("x.gguf"));
        Assert.Equal(ExitCodes.InvalidInput, r.ExitCode);
        Assert.Equal(["error: unknown option '--tpye'; did you mean '--type'?"], ErrorLines(r));
        // an option of another command taken as an argument is refused before any work
        var misplaced = CliRunner.Run("diff", Fixtures.TinyA, Fixtures.TinyA, "--windw", "8", "--random-tokens", "64");
        Assert.Equal(["error: unknown option '--windw'; did you mean '--window'?"], ErrorLines(misplaced));
        Assert.Equal(["error: unknown option '--sq-len'; did you mean '--seq-len'?"], ErrorLines(CliRunner.Run("inspect", "--sq-len", "5", Fixtures.TinyA)));
        // a short option the command lacks is named without a far-fetched suggestion
        Assert.Equal(["error: unknown option '-o' (see 'hymba diff --help')"], ErrorLines(CliRunner.Run("diff", Fixtures.TinyA, Fixtures.TinyA, "-o", _dir.File("d.json"))));
    }

    [Fact]
    public void Version_after_a_command_prints_the_version()
    {
        var root = CliRunner.Run("inspect", "--version");
        Assert.Equal(0, root.ExitCode);
        Assert.Equal(CommandRunner.Version, root.Stdout.Trim());
        Assert.Matches(@"^\d+\.\d+\.\d+", root.Stdout);
        Assert.Equal(0, CliRunner.Run("quantize", "--version").ExitCode);
    }

    [Fact]
    public void Compare_checks_every_artifact_before_the_first_comparison_and_takes_o_for_out()
    {
        string q8 = Gguf("q8_0");
        var r = CliRunner.Run("compare", ExampleModel, q8, _dir.File("missing.gguf"), "--max-tokens", "256", "--chunk", "64");
        AssertOneLineError(r, "error: artifacts:");
        Assert.Contains("missing.gguf", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("comparing", r.Stderr, StringComparison.Ordinal);
        Assert.Equal("", r.Stdout);

        string report = _dir.File("report");
        var o = CliRunner.Run("compare", ExampleModel, q8, "-o", report, "--max-tokens", "512", "--chunk", "128");
        Assert.True(o.ExitCode == 0, o.Stderr);
        Assert.True(File.Exists(Path.Combine(report, "report.json")));
    }

    [Fact]
    public void Every_compare_gate_works_without_out_and_bounds_are_checked()
    {
        string q4 = Gguf("q4_0");
        string[] common = ["compare", ExampleModel, q4, "--max-tokens", "257", "--chunk", "128"];
        var top1 = CliRunner.Run([.. common, "--min-top1", "0.9999"]);
        Assert.Equal(ExitCodes.CheckFailed, top1.ExitCode);
        Assert.Contains("gate failed: q4_0: same top token", top1.Stderr, StringComparison.Ordinal);
        var ppl = CliRunner.Run([.. common, "--max-ppl-ratio", "0.5"]);
        Assert.Equal(ExitCodes.CheckFailed, ppl.ExitCode);
        Assert.Contains("gate failed: q4_0: perplexity ratio", ppl.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, CliRunner.Run([.. common, "--min-top1", "0.1", "--max-ppl-ratio", "2"]).ExitCode);
        AssertOneLineError(CliRunner.Run([.. common, "--max-kl", "-1"]), "error: --max-kl:");
    }

    [Fact]
    public void Diff_and_compare_use_the_tokenizer_a_gguf_file_carries()
    {
        string q8 = Gguf("q8_0"), f32 = Gguf("f32");
        var diff = CliRunner.Run("diff", q8, f32, "--max-tokens", "512", "--window", "256", "--json");
        Assert.True(diff.ExitCode == 0, diff.Stderr);
        using var doc = JsonDocument.Parse(diff.Stdout);
        Assert.Contains("built-in evaluation text", doc.RootElement.GetProperty("token_source").GetString(), StringComparison.Ordinal);
        var compare = CliRunner.Run("compare", f32, q8, "--max-tokens", "257", "--chunk", "128");
        Assert.True(compare.ExitCode == 0, compare.Stderr);
        // --tokenizer chooses the tokenizer on every evaluating command
        foreach (var command in new[] { "diff", "compare", "convert", "merge-kv", "imatrix" })
            Assert.Contains("--tokenizer", CliRunner.Run(command, "--help").Stdout, StringComparison.Ordinal);
        string text = _dir.File("t.txt");
        File.WriteAllText(text, File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "example-data", "persuasion.txt"))[..6000]);
        var withTokenizer = CliRunner.Run("diff", q8, f32, "--text", text, "--tokenizer", ExampleTokenizer, "--max-tokens", "512", "--window", "256");
        Assert.True(withTokenizer.ExitCode == 0, withTokenizer.Stderr);
    }

    [Fact]
    public void Artifacts_whose_tokenizers_differ_are_refused_naming_both()
    {
        string other = _dir.CopyOf(ExampleModel, "renamed-pad");
        File.WriteAllText(Path.Combine(other, "added_tokens.json"), "{ \"<pad>\": 4000 }");
        var r = CliRunner.Run("diff", ExampleModel, other, "--max-tokens", "512", "--window", "256");
        AssertOneLineError(r, "error: b:");
        Assert.Contains(other, r.Stderr, StringComparison.Ordinal);
        Assert.Contains(ExampleModel, r.Stderr, StringComparison.Ordinal);
        Assert.Contains("token 4000", r.Stderr, StringComparison.Ordinal);
        AssertOneLineError(CliRunner.Run("compare", ExampleModel, other, "--max-tokens", "257", "--chunk", "128"), "error: artifacts:");
        // one tokenizer for both, by choice
        Assert.Equal(0, CliRunner.Run("diff", ExampleModel, other, "--tokenizer", ExampleModel, "--max-tokens", "512", "--window", "256").ExitCode);
    }

    [Fact]
    public void Text_that_is_not_utf8_is_refused_at_its_byte_offset_unless_an_encoding_is_named()
    {
        string q8 = Gguf("q8_0");
        string body = "Anne Elliot was a woman of élégance, and Sir Walter's café was in Bath. " +
                      File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "example-data", "persuasion.txt"))[..4000];
        string utf8 = _dir.File("utf8.txt"), latin1 = _dir.File("latin1.txt"), utf16 = _dir.File("utf16.txt");
        File.WriteAllText(utf8, body, new UTF8Encoding(false));
        File.WriteAllBytes(latin1, Encoding.Latin1.GetBytes(body));
        File.WriteAllText(utf16, body, new UnicodeEncoding(false, true));
        int offset = Encoding.UTF8.GetByteCount(body[..body.IndexOf('é', StringComparison.Ordinal)]);

        var refused = CliRunner.Run("diff", ExampleModel, q8, "--text", latin1, "--max-tokens", "512", "--window", "256");
        AssertOneLineError(refused, "error: --text:");
        Assert.Contains($"{latin1}: invalid UTF-8 at byte offset {offset}", refused.Stderr, StringComparison.Ordinal);
        AssertOneLineError(CliRunner.Run("imatrix", ExampleModel, "--text", latin1, "-o", _dir.File("i.safetensors")), "error: --text:");
        AssertOneLineError(CliRunner.Run("diff", ExampleModel, q8, "--text", utf16, "--max-tokens", "512", "--window", "256"), "error: --text:");
        AssertOneLineError(CliRunner.Run("diff", ExampleModel, q8, "--text", latin1, "--text-encoding", "klingon"), "error: --text-encoding:");

        string Kl(params string[] extra)
        {
            var r = CliRunner.Run(["diff", ExampleModel, q8, "--max-tokens", "512", "--window", "256", "--json", .. extra]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            return doc.RootElement.GetProperty("mean_kl").GetRawText();
        }
        string expected = Kl("--text", utf8);
        Assert.Equal(expected, Kl("--text", latin1, "--text-encoding", "latin1"));
        Assert.Equal(expected, Kl("--text", utf16, "--text-encoding", "utf-16"));
    }

    [Fact]
    public void Chat_without_the_template_tokens_warns_once_and_the_reply_is_its_own_turn()
    {
        var r = CliRunner.Run("generate", ExampleModel, "--chat", "--prompt", "Who is Anne?", "--max-new-tokens", "4", "--seed", "1");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var warnings = ErrorLines(r).Where(l => l.StartsWith("warning:", StringComparison.Ordinal)).ToList();
        Assert.Single(warnings);
        Assert.Contains("<extra_id_0>", warnings[0], StringComparison.Ordinal);
        Assert.StartsWith("User: Who is Anne?\nAssistant: ", r.Stdout, StringComparison.Ordinal);
        var plain = CliRunner.Run("generate", ExampleModel, "--prompt", "Who is Anne?", "--max-new-tokens", "4", "--seed", "1");
        Assert.DoesNotContain("warning:", plain.Stderr, StringComparison.Ordinal);
        Assert.StartsWith("Who is Anne?", plain.Stdout, StringComparison.Ordinal);

        // a tokenizer that has them as added tokens encodes each marker as one token, and is not warned about
        string withMarkers = _dir.CopyOf(ExampleTokenizer, "instruct-tokenizer");
        File.WriteAllText(Path.Combine(withMarkers, "added_tokens.json"), "{ \"[PAD]\": 4000, \"<extra_id_0>\": 4001, \"<extra_id_1>\": 4002 }");
        var tokenizer = HymbaTools.Text.HymbaTokenizer.Load(withMarkers);
        Assert.All(HymbaTools.Text.ChatTemplate.Markers, m => Assert.True(tokenizer.HasSpecialToken(m)));
        Assert.Equal([4001L], tokenizer.Encode("<extra_id_0>", addBos: false));
        Assert.False(HymbaTools.Text.HymbaTokenizer.Load(ExampleTokenizer).HasSpecialToken("<extra_id_0>"));
    }

    [Fact]
    public void The_wrong_kind_of_input_is_named_with_what_the_command_needs()
    {
        string onnx = _dir.File("onnx");
        Assert.Equal(0, CliRunner.Run("export", Fixtures.TinyA, "--type", "f32", "-o", onnx).ExitCode);
        AssertOneLineError(CliRunner.Run("quantize", onnx, "--type", "q8_0", "-o", _dir.File("q.gguf")), $"error: {onnx}: is an ONNX export directory; `quantize` needs");
        AssertOneLineError(CliRunner.Run("merge-kv", onnx, "--groups", "[[1,2]]", "-o", _dir.File("m"), "--random-tokens", "64"), $"error: {onnx}: is an ONNX export directory; `merge-kv` needs");
        AssertOneLineError(CliRunner.Run("export", onnx, "--type", "f32", "-o", _dir.File("e")), $"error: {onnx}: is an ONNX export directory; `export` needs");
        AssertOneLineError(CliRunner.Run("convert", onnx, "--to", "gguf:q8_0", "--out", _dir.File("c"), "--random-tokens", "64"), $"error: {onnx}: is an ONNX export directory; `convert` needs");
        string configOnly = _dir.File("config-only");
        Assert.Equal(0, CliRunner.Run("init", configOnly, "--preset", "tiny", "--config-only").ExitCode);
        AssertOneLineError(CliRunner.Run("quantize", configOnly, "--type", "q8_0", "-o", _dir.File("q.gguf")), $"error: {configOnly}: is a checkpoint directory without weights");
        Assert.Equal(0, CliRunner.Run("quantize", configOnly, "--type", "q8_0", "--dry-run").ExitCode);
    }

    [Fact]
    public void Export_of_a_quantized_gguf_follows_quantize_s_requantize_rule()
    {
        string q8 = _dir.File("q8.gguf"), f32 = _dir.File("f32.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", q8).ExitCode);
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "f32", "-o", f32).ExitCode);
        AssertOneLineError(CliRunner.Run("export", q8, "--type", "int8", "-o", _dir.File("refused")), "error: --allow-requantize:");
        AssertOneLineError(CliRunner.Run("quantize", q8, "--type", "q4_0", "-o", _dir.File("refused.gguf")), "error: --allow-requantize:");
        var allowed = CliRunner.Run("export", q8, "--type", "int8", "--allow-requantize", "-o", _dir.File("allowed"));
        Assert.True(allowed.ExitCode == 0, allowed.Stderr);
        Assert.Contains("warning: requantized", allowed.Stderr, StringComparison.Ordinal);
        var fromFloat = CliRunner.Run("export", f32, "--type", "int8", "-o", _dir.File("from-float"));
        Assert.True(fromFloat.ExitCode == 0, fromFloat.Stderr);
        Assert.DoesNotContain("warning:", fromFloat.Stderr, StringComparison.Ordinal);
    }
}
