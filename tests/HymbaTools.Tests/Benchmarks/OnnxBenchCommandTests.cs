using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Benchmarks;

/// <summary>
/// `bench onnx` end to end on a tiny export, with a stand-in for llama-bench that prints llama-bench's JSON layout:
/// the plumbing (runtimes timed, llama.cpp's figures read and set beside them as ratios), not the speeds.
/// </summary>
public class OnnxBenchCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private string FakeLlamaBench(string json)
    {
        string script = _dir.File($"llama-bench-{Guid.NewGuid():N}");
        File.WriteAllText(script, $"#!/bin/sh\ncat <<'EOF'\n{json}\nEOF\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return script;
    }

    [Fact]
    public void Bench_onnx_times_hymba_and_genai_and_sets_llama_bench_beside_them()
    {
        string export = _dir.File("export");
        Assert.Equal(0, CliRunner.Run("export", Fixtures.TinyA, "--type", "int4", "-o", export, "-q").ExitCode);
        string gguf = _dir.File("llama.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", gguf, "-q").ExitCode);
        // pp4 at 100 tokens/s is a first call of 40 ms; pp8 at 50 tokens/s; tg2 at 20 tokens/s.
        string llama = FakeLlamaBench("""
            [{"model_size": 4000000, "n_prompt": 4, "n_gen": 0, "n_depth": 0, "avg_ts": 100.0},
             {"model_size": 4000000, "n_prompt": 8, "n_gen": 0, "n_depth": 0, "avg_ts": 50.0},
             {"model_size": 4000000, "n_prompt": 0, "n_gen": 2, "n_depth": 0, "avg_ts": 20.0}]
            """);
        var run = CliRunner.Run("bench", "onnx", export, "--rounds", "1", "--prompt", "4", "--prefill", "8", "--decode", "2", "--llama-bench", llama, "--llama-model", gguf);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var lines = run.Stdout.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("hymba runner, int4", StringComparison.Ordinal) && l.Contains('x'));
        Assert.Contains(lines, l => l.StartsWith("onnxruntime-genai, int4", StringComparison.Ordinal));
        var llamaRow = Assert.Single(lines, l => l.StartsWith("llama.cpp llama.gguf", StringComparison.Ordinal));
        Assert.Contains("40 ms", llamaRow, StringComparison.Ordinal);
        Assert.Contains("50.0", llamaRow, StringComparison.Ordinal);
        Assert.Contains("20.00", llamaRow, StringComparison.Ordinal);
        Assert.Contains("decode / llama", run.Stdout, StringComparison.Ordinal);
        Assert.Contains("read bandwidth", run.Stdout, StringComparison.Ordinal);
    }

    /// <summary>
    /// --depth: decode after a context in hymba's runner, genai and the llama-bench stand-in (its tg at that depth), with
    /// each runtime's state bytes there: hymba's and genai's measured and equal to the export's formula, llama.cpp's
    /// from the GGUF's shapes (a Hymba GGUF here: its llama.cpp-style keys give the same formula).
    /// </summary>
    [Fact]
    public void Bench_onnx_depth_times_decode_after_a_context_and_reports_each_runtime_s_state()
    {
        string export = _dir.File("export-depth");
        Assert.Equal(0, CliRunner.Run("export", Fixtures.TinyB, "--type", "int4", "-o", export, "-q").ExitCode);
        using var runner = HymbaTools.Runtime.OnnxRunner.Open(export);
        var c = runner.Config;
        int depth = 3 * c.SlidingWindow!.Value;
        string llama = FakeLlamaBench($$"""
            [{"model_size": 4000000, "n_prompt": 0, "n_gen": 2, "n_depth": {{depth}}, "avg_ts": 10.0}]
            """);
        string gguf = _dir.File("llama-depth.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyB, "--type", "q8_0", "-o", gguf, "-q").ExitCode);
        var run = CliRunner.Run("bench", "onnx", export, "--rounds", "1", "--decode", "2", "--depth", depth.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--chunk", "7", "--llama-bench", llama, "--llama-model", gguf);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var lines = run.Stdout.Split('\n');
        Assert.Contains($"decode tokens/s at depth {depth}", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(lines, l => l.StartsWith("runtime ", StringComparison.Ordinal) && l.Contains("first call", StringComparison.Ordinal)); // depth 0 not asked for
        string bytes = HymbaTools.Runtime.OnnxStateSize.At(c, HymbaTools.Formats.Onnx.OnnxStateType.F16, depth).ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains(lines, l => l.StartsWith("hymba runner, int4", StringComparison.Ordinal) && l.Contains(bytes, StringComparison.Ordinal) && l.EndsWith('x'));
        Assert.Contains(lines, l => l.StartsWith("onnxruntime-genai, int4", StringComparison.Ordinal) && l.Contains(bytes, StringComparison.Ordinal));
        var llamaRow = Assert.Single(lines, l => l.StartsWith("llama.cpp llama-depth.gguf", StringComparison.Ordinal));
        Assert.Contains("10.00", llamaRow, StringComparison.Ordinal);
        Assert.Contains("1.00x", llamaRow, StringComparison.Ordinal);

        // The deepest context the check lets through runs in genai too: its warm-up and round decode up to the context's end.
        string deepest = (c.MaxPositionEmbeddings - 2 * 2).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var full = CliRunner.Run("bench", "onnx", export, "--rounds", "1", "--decode", "2", "--depth", deepest, "--chunk", "64");
        Assert.True(full.ExitCode == 0, full.Stderr);
        Assert.Contains(full.Stdout.Split('\n'), l => l.StartsWith("onnxruntime-genai, int4", StringComparison.Ordinal));

        var tooDeep = CliRunner.Run("bench", "onnx", export, "--depth", c.MaxPositionEmbeddings.ToString(System.Globalization.CultureInfo.InvariantCulture), "--no-genai");
        Assert.Equal(2, tooDeep.ExitCode);
        Assert.StartsWith("error: --depth:", tooDeep.FirstErrorLine, StringComparison.Ordinal);
        Assert.Equal(2, CliRunner.Run("bench", "onnx", export, "--depth", "-5").ExitCode);
    }

    [Fact]
    public void A_llama_bench_whose_output_cannot_be_read_is_named()
    {
        string export = _dir.File("export");
        Assert.Equal(0, CliRunner.Run("export", Fixtures.TinyA, "--type", "f32", "-o", export, "-q").ExitCode);
        string gguf = _dir.File("llama.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", gguf, "-q").ExitCode);
        var run = CliRunner.Run("bench", "onnx", export, "--rounds", "1", "--prompt", "4", "--prefill", "8", "--decode", "2", "--no-genai",
            "--llama-bench", FakeLlamaBench("[{\"n_prompt\": 4, \"n_gen\": 0, \"avg_ts\": 1.0}]"), "--llama-model", gguf);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains(run.Stderr.Split('\n'), l => l.StartsWith("error: --llama-bench:", StringComparison.Ordinal));
        Assert.Equal(2, CliRunner.Run("bench", "onnx", export, "--llama-bench", "/bin/true").ExitCode);
    }

    [Fact]
    public void Bench_onnx_profile_prints_kernel_time_per_op_type_and_leaves_no_trace_behind()
    {
        string export = _dir.File("export-profile");
        Assert.Equal(0, CliRunner.Run("export", Fixtures.TinyA, "--type", "int4", "-o", export, "-q").ExitCode);
        string work = Directory.CreateDirectory(_dir.File("work")).FullName;
        string cwd = Directory.CreateDirectory(_dir.File("cwd")).FullName;
        var run = CliRunner.RunProcess(cwd, new Dictionary<string, string?>(), "bench", "onnx", export, "--rounds", "1", "--prompt", "4", "--prefill", "8", "--decode", "2",
            "--no-genai", "--profile", "--work", work, "--threads", "1");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var lines = run.Stdout.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("ONNX Runtime profile of int4", StringComparison.Ordinal));
        // MatMulNBits split by weight width: 4-bit blocks, and 8 bits for x_proj/dt_proj and the tied head.
        Assert.Contains(lines, l => l.StartsWith("MatMulNBits 4-bit ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("MatMulNBits 8-bit ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("kernels, all", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith("If ", StringComparison.Ordinal) || l.StartsWith("Scan ", StringComparison.Ordinal));
        Assert.Empty(Directory.EnumerateFileSystemEntries(work));
        Assert.Empty(Directory.EnumerateFileSystemEntries(cwd)); // ONNX Runtime's default trace name lands in the current directory
    }
}
