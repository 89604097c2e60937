using System.Diagnostics;
using HymbaTools.Cli;
using HymbaTools.Formats.Gguf;
using HymbaTools.Formats;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>
/// The error model (README "Exit codes"): output paths checked before work, usage errors exit 2, bugs exit 3
/// without a trace on the terminal, interrupts and kills leave no half-written output.
/// </summary>
public class ErrorModelTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static void AssertOneLineInputError(CliRunner.Result r, string expectedStart)
    {
        Assert.Equal(ExitCodes.InvalidInput, r.ExitCode);
        Assert.StartsWith(expectedStart, r.FirstErrorLine, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Output_paths_are_checked_before_the_work()
    {
        string existingDirectory = Directory.CreateDirectory(_dir.File("adir")).FullName;
        AssertOneLineInputError(CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", existingDirectory), "error: --output:");
        AssertOneLineInputError(CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", _dir.File("missing/x.gguf")), "error: --output:");
        AssertOneLineInputError(CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", "/proc/none/x.gguf"), "error: --output:");
        string file = _dir.File("file");
        File.WriteAllText(file, "x");
        AssertOneLineInputError(CliRunner.Run("merge-kv", Fixtures.TinyB, "--groups", "[[1,2,3]]", "-o", file), "error: -o:");
        File.WriteAllText(Path.Combine(existingDirectory, "keep.txt"), "mine");
        AssertOneLineInputError(CliRunner.Run("merge-kv", Fixtures.TinyB, "--groups", "[[1,2,3]]", "-o", existingDirectory), "error: -o:");
        Assert.Equal(["keep.txt"], Directory.GetFiles(existingDirectory).Select(Path.GetFileName));
        Assert.Equal(0, CliRunner.Run("merge-kv", Fixtures.TinyB, "--groups", "[[1,2,3]]", "-o", existingDirectory, "--force", "--random-tokens", "64").ExitCode);
        Assert.False(File.Exists(Path.Combine(existingDirectory, "keep.txt")), "--force replaces the directory, it does not mix into it");
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path, ".*.partial"));
    }

    [Fact]
    public void A_file_that_is_not_what_the_command_reads_is_named_as_such()
    {
        string random = _dir.File("random.gguf");
        File.WriteAllBytes(random, Enumerable.Range(0, 4096).Select(i => (byte)(i * 37 + 11)).ToArray());
        AssertOneLineInputError(CliRunner.Run("inspect", random), $"error: {random}: magic:");
        AssertOneLineInputError(CliRunner.Run("inspect", _dir.File("nope.gguf")), $"error: {_dir.File("nope.gguf")}: no such file or directory");
        string gguf = _dir.File("model.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", gguf).ExitCode);
        var r = CliRunner.Run("merge-kv", gguf, "--groups", "[[1,2]]", "-o", _dir.File("m"));
        AssertOneLineInputError(r, $"error: {gguf}: is a GGUF file");
    }

    [Fact]
    public void Quiet_keeps_results_and_errors_and_drops_notes()
    {
        string path = _dir.File("q.gguf");
        var loud = CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q4_k_m", "-o", path);
        Assert.Contains("note: shape fallbacks", loud.Stderr, StringComparison.Ordinal);
        var quiet = CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q4_k_m", "-o", path, "--quiet");
        Assert.Equal(0, quiet.ExitCode);
        Assert.Equal("", quiet.Stderr);
        Assert.StartsWith("wrote ", quiet.Stdout, StringComparison.Ordinal);
        var failing = CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q9", "-o", path, "-q");
        Assert.StartsWith("error: --type:", failing.FirstErrorLine, StringComparison.Ordinal);
    }

    [Fact]
    public void Usage_errors_exit_2_with_the_option_named()
    {
        var r = CliRunner.Run("quantize", Fixtures.TinyA);
        AssertOneLineInputError(r, "error: --type:");   // a preset or --target-bpw, one of them
        Assert.Contains("--target-bpw", r.FirstErrorLine);
        AssertOneLineInputError(CliRunner.Run("inspect"), "error: Required argument missing");
        AssertOneLineInputError(CliRunner.Run("nosuchcommand"), "error:");
    }

    [Fact]
    public void An_internal_error_is_one_line_exit_3_with_the_trace_in_a_file()
    {
        var stderr = new StringWriter();
        var parse = new System.CommandLine.RootCommand { CommandRunner.Verbose }.Parse([]);
        int code = CommandRunner.Run(parse, stderr, () => throw new InvalidOperationException("a bug\nsecond line"));
        Assert.Equal(ExitCodes.InternalError, code);
        var lines = stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("internal error: InvalidOperationException: a bug (a bug in hymba; the trace is in ", lines[0], StringComparison.Ordinal);
        string traceFile = lines[0][(lines[0].IndexOf("the trace is in ", StringComparison.Ordinal) + "the trace is in ".Length)..^1];
        Assert.Contains("InvalidOperationException", File.ReadAllText(traceFile), StringComparison.Ordinal);
        File.Delete(traceFile);

        var verbose = new StringWriter();
        var verboseParse = new System.CommandLine.RootCommand { CommandRunner.Verbose }.Parse(["--verbose"]);
        CommandRunner.Run(verboseParse, verbose, () => throw new InvalidOperationException("a bug"));
        Assert.Contains("   at ", verbose.ToString(), StringComparison.Ordinal);
    }

    private static string HymbaDll => Path.Combine(AppContext.BaseDirectory, "hymba.dll");

    private static Process Start(params string[] args)
    {
        return Process.Start(DefaultSignals.Start("dotnet", [HymbaDll, .. args]))!;
    }

    /// <summary>
    /// SIGKILL at spread-out moments of a command that writes: the destination is either absent or complete (a
    /// GGUF file that opens with every tensor, a checkpoint or an export directory that loads), and the next run
    /// removes what the killed one left beside it.
    /// </summary>
    [Theory]
    [InlineData("quantize")]
    [InlineData("merge-kv")]
    [InlineData("export")]
    public void A_killed_command_leaves_the_complete_output_or_nothing_and_the_next_run_cleans_up(string command)
    {
        string checkpoint = _dir.File("medium");
        Assert.Equal(0, CliRunner.Run("init", checkpoint, "--preset", "medium").ExitCode);
        string destination = _dir.File(command == "quantize" ? "out.gguf" : "out");
        string[] Args() => command switch
        {
            "quantize" => ["quantize", checkpoint, "--type", "q6_k", "-o", destination],
            "merge-kv" => ["merge-kv", checkpoint, "--groups", "[[1,2],[3,4],[7,8,9,10]]", "--tokens", Tokens(), "--force", "-o", destination],
            _ => ["export", checkpoint, "--type", "int4", "--force", "-o", destination],
        };
        foreach (int delay in new[] { 150, 300, 450, 600, 900 })
        {
            if (File.Exists(destination)) File.Delete(destination);
            using var process = Start(Args());
            Thread.Sleep(delay);
            try { process.Kill(); } catch (InvalidOperationException) { }
            process.WaitForExit();
            AssertCompleteOrAbsent(command, destination);
        }
        Assert.Equal(0, CliRunner.Run(Args()).ExitCode);
        AssertCompleteOrAbsent(command, destination);
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path, $".{Path.GetFileName(destination)}.*.partial"));
    }

    private string Tokens()
    {
        string path = _dir.File("tokens.txt");
        File.WriteAllText(path, string.Join(' ', Enumerable.Range(0, 40).Select(i => i * 7 % 1000)));
        return path;
    }

    private static void AssertCompleteOrAbsent(string command, string destination)
    {
        switch (command)
        {
            case "quantize" when File.Exists(destination):
                using (var file = GgufFile.Open(destination)) Assert.Empty(TensorChecksums.Verify(file)!);
                break;
            case "merge-kv" when Directory.Exists(destination):
                using (var merged = HymbaTools.Model.HymbaCheckpoint.Open(destination)) Assert.True(merged.HasWeights);
                break;
            case "export" when Directory.Exists(destination):
                Assert.Empty(TensorChecksums.VerifyOnnx(destination)!);
                using (var runner = HymbaTools.Runtime.OnnxRunner.Open(destination)) Assert.True(runner.PastNames.Count > 0);
                break;
        }
    }

    /// <summary>SIGINT while the output is being written: exit 130 and no temporary file left.</summary>
    [Fact]
    public void An_interrupted_export_removes_its_temporary_output_and_exits_130()
    {
        string checkpoint = _dir.File("medium");
        Assert.Equal(0, CliRunner.Run("init", checkpoint, "--preset", "medium").ExitCode);
        for (int attempt = 0; attempt < 5; attempt++)
        {
            string destination = _dir.File($"onnx-{attempt}");
            using var process = Start("export", checkpoint, "--type", "int4", "-o", destination);
            var clock = Stopwatch.StartNew();
            while (!process.HasExited && clock.Elapsed < TimeSpan.FromSeconds(20) && Directory.GetDirectories(_dir.Path, $".onnx-{attempt}.*.partial").Length == 0)
                Thread.Sleep(5);
            if (process.HasExited) continue; // finished before it could be interrupted: try again
            using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
            process.WaitForExit();
            if (process.ExitCode == 0) continue; // the signal arrived after the rename
            Assert.Equal(ExitCodes.Interrupted, process.ExitCode);
            Assert.False(Directory.Exists(destination));
            Assert.Empty(Directory.GetFileSystemEntries(_dir.Path, $".onnx-{attempt}.*"));
            return;
        }
        Assert.Fail("the export was never interrupted while writing (five attempts)");
    }
}
