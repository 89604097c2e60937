using HymbaTools.Cli;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>
/// SIGINT and SIGTERM while a command runs a model (README "Exit codes"): every command that runs one (and the ones
/// that write large outputs), signalled while it loads and in the middle of its work, as a child process of the
/// built hymba.dll. Each must exit 130 / 143 within a bound, print exactly one line after the signal (no internal
/// error, no trace, no progress or note after it) and leave no temporary in its output directory. Before the fix
/// the forward-pass commands ended in a segfault (139), "internal error: ExternalException: Invalid (backend, op)
/// pair", or ONNX Runtime's "GetElementType is not implemented". The cases are spread over three classes so that
/// xunit runs them in parallel.
/// </summary>
internal static class InterruptCases
{
    /// <summary>From the signal to the exit: the command's grace (3 s) for reaching its next check, plus start-up noise on a loaded machine.</summary>
    public static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MarkerTimeout = TimeSpan.FromSeconds(180);

    private static readonly Lazy<Artifacts> Shared = new(Artifacts.Build, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The example model, its q8_0 GGUF and int8 ONNX export, and a medium random checkpoint (large enough that quantize and export are caught mid-write); built once per test run.</summary>
    public static Artifacts Files => Shared.Value;

    public sealed record Artifacts(string Root, string Example, string Gguf, string Onnx, string Medium, string Text)
    {
        public static Artifacts Build()
        {
            // One directory per test process; the test host does not always run exit handlers, so a run removes
            // the directories of earlier test processes that no longer run.
            foreach (var earlier in Directory.EnumerateDirectories(Path.GetTempPath(), "hymba-interrupt-*"))
                if (int.TryParse(Path.GetFileName(earlier)["hymba-interrupt-".Length..], out int pid) && !Running(pid))
                    try { Directory.Delete(earlier, recursive: true); } catch (IOException) { }
            string root = Path.Combine(Path.GetTempPath(), $"hymba-interrupt-{Environment.ProcessId}");
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
            Directory.CreateDirectory(root);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(root, recursive: true); } catch (IOException) { } };
            string example = Path.Combine(AppContext.BaseDirectory, "example-model");
            string gguf = Path.Combine(root, "q8.gguf"), onnx = Path.Combine(root, "onnx"), medium = Path.Combine(root, "medium");
            Ok(CliRunner.Run("quantize", example, "--type", "q8_0", "-o", gguf));
            Ok(CliRunner.Run("export", example, "--type", "int8", "-o", onnx));
            Ok(CliRunner.Run("init", medium, "--preset", "medium"));
            // A tokenizer for calibration text (GPTQ, bit budgets): the example's ids fit the medium vocabulary.
            File.Copy(Path.Combine(example, "tokenizer.model"), Path.Combine(medium, "tokenizer.model"));
            return new Artifacts(root, example, gguf, onnx, medium, Path.Combine(AppContext.BaseDirectory, "example-data", "persuasion.txt"));
        }

        private static bool Running(int pid)
        {
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(pid);
                return !process.HasExited;
            }
            catch (ArgumentException) { return false; }
        }

        private static void Ok(CliRunner.Result r) => Assert.True(r.ExitCode == 0, r.Stderr);
    }

    /// <summary>When to send the signal.</summary>
    public enum Moment
    {
        /// <summary>As soon as the model file or a native runtime (libtorch, ONNX Runtime) is mapped: the model is being loaded.</summary>
        Loading,
        /// <summary>When the command shows it is working: a note on stderr, generated text on stdout or a temporary output (see the case).</summary>
        Working,
    }

    /// <summary>
    /// Runs <paramref name="args"/> in a fresh output directory (<c>{out}</c> in an argument stands for it), signals at
    /// <paramref name="moment"/> and checks the interrupt's contract.
    /// </summary>
    public static void Check(int signal, Moment moment, Func<InterruptibleChild, string, bool> working, params string[] args) =>
        Check(signal, moment, working, twice: false, args);

    /// <param name="twice">send the signal a second time right after the first (the user who does not wait: the process ends at once, still with one line)</param>
    public static void Check(int signal, Moment moment, Func<InterruptibleChild, string, bool> working, bool twice, params string[] args) =>
        Check(signal, moment, working, twice, ExitBound, args);

    /// <param name="bound">from the signal to the exit</param>
    public static void Check(int signal, Moment moment, Func<InterruptibleChild, string, bool> working, bool twice, TimeSpan bound, params string[] args)
    {
        using var output = new TempDir();
        string[] resolved = [.. args.Select(a => a.Replace("{out}", output.Path, StringComparison.Ordinal))];
        using var child = new InterruptibleChild(output.Path, resolved);
        string[] loadingMarks = [.. args.Where(a => a == Files.Example || a == Files.Gguf || a == Files.Onnx || a == Files.Medium), "libtorch_cpu", "libonnxruntime"];
        bool reached = moment == Moment.Loading
            ? child.WaitFor(c => loadingMarks.Any(c.Maps), MarkerTimeout)
            : child.WaitFor(c => working(c, output.Path), MarkerTimeout);
        Assert.True(reached, $"hymba {child.Args}: never reached the moment {moment} ({child.Status}); stderr:\n{child.Stderr}");
        child.Signal(signal);
        if (twice) child.Signal(signal, again: true);
        var elapsed = child.WaitForExit(bound);
        Assert.True(elapsed is not null, $"hymba {child.Args}: still running {bound.TotalSeconds} s after the signal");

        int expectedCode = signal == InterruptibleChild.SigInt ? ExitCodes.Interrupted : ExitCodes.Terminated;
        string expectedLine = signal == InterruptibleChild.SigInt ? "interrupted: temporary outputs removed" : "terminated: temporary outputs removed";
        string context = $"hymba {child.Args} ({moment}): exit {child.ExitCode}, stderr:\n{child.Stderr}";
        Assert.True(child.ExitCode == expectedCode, context);
        // The interrupt line is the last line and the only one of its kind: nothing (no progress, no second
        // message) follows it. Lines between the signal and it are not judged: a line written just before the
        // handler ran can reach this process after the signal was sent, so "after the signal" is a race here.
        var lines = child.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 0 && lines[^1] == expectedLine && lines.Count(l => l == expectedLine) == 1, context);
        Assert.True(child.StderrAfterSignal.Count(l => l == expectedLine) == 1, context);
        foreach (string bad in new[] { "internal error", "xception", "   at ", "INTERNAL ASSERT" })
            Assert.False(child.Stderr.Contains(bad, StringComparison.Ordinal), context);
        var left = Directory.EnumerateFileSystemEntries(output.Path, "*.partial", SearchOption.AllDirectories).ToList();
        Assert.True(left.Count == 0, $"{context}\ntemporaries left: {string.Join(", ", left)}");
    }

    /// <summary>The process has been working for a while after loading (for commands that print nothing until their result).</summary>
    public static Func<InterruptibleChild, string, bool> AfterLoading(string modelPath)
    {
        DateTime? loaded = null;
        return (child, _) =>
        {
            if (loaded is null && (child.Maps(modelPath) || child.Maps("libtorch_cpu"))) loaded = DateTime.UtcNow;
            return loaded is { } at && DateTime.UtcNow - at > TimeSpan.FromSeconds(1.5);
        };
    }

    public static Func<InterruptibleChild, string, bool> StderrShows(string text) => (child, _) => child.StderrHas(text);

    /// <summary>A line on stderr, then <paramref name="seconds"/> more (the work it announces is under way).</summary>
    public static Func<InterruptibleChild, string, bool> StderrShowedSecondsAgo(string text, double seconds)
    {
        DateTime? shown = null;
        return (child, _) =>
        {
            if (shown is null && child.StderrHas(text)) shown = DateTime.UtcNow;
            return shown is { } at && DateTime.UtcNow - at > TimeSpan.FromSeconds(seconds);
        };
    }

    public static Func<InterruptibleChild, string, bool> StdoutLonger(int characters) => (child, _) => child.Stdout.Length > characters;

    /// <summary>A temporary output exists in the output directory (the command is writing).</summary>
    public static Func<InterruptibleChild, string, bool> Writing => (_, directory) =>
        Directory.EnumerateFileSystemEntries(directory, "*.partial").Any();

    public static readonly Func<InterruptibleChild, string, bool> None = (_, _) => false;
}

public class InterruptGenerateTests
{
    private static InterruptCases.Artifacts F => InterruptCases.Files;

    [Fact]
    public void Generate_from_a_checkpoint_stops_cleanly_while_loading_and_while_streaming()
    {
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Loading, InterruptCases.None,
            "generate", F.Example, "--prompt", "It was", "--max-new-tokens", "100000");
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Working, InterruptCases.StdoutLonger(40),
            "generate", F.Example, "--prompt", "It was", "--max-new-tokens", "100000");
    }

    [Fact]
    public void Generate_from_an_onnx_export_and_a_gguf_file_stops_cleanly()
    {
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Loading, InterruptCases.None,
            "generate", F.Onnx, "--prompt", "It was", "--max-new-tokens", "100000");
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.StdoutLonger(40),
            "generate", F.Onnx, "--prompt", "It was", "--max-new-tokens", "100000");
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.StdoutLonger(40),
            "generate", F.Gguf, "--prompt", "It was", "--max-new-tokens", "100000");
    }

    [Fact]
    public void A_second_signal_ends_generation_at_once_with_still_one_line()
    {
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.StdoutLonger(40), twice: true,
            "generate", F.Example, "--prompt", "It was", "--max-new-tokens", "100000");
    }

    /// <summary>The check the session runs before it stops, as it runs it: `timeout --preserve-status -s INT 4 dotnet hymba.dll generate ...`.</summary>
    [Fact]
    public void The_timeout_check_of_the_readme_exits_130_without_an_internal_error()
    {
        var run = HymbaTools.Cli.ChildProcess.Start(DefaultSignals.Start("timeout",
            ["--preserve-status", "-s", "INT", "4", "dotnet", typeof(Program).Assembly.Location, "generate", F.Example, "--prompt", "It was", "--max-new-tokens", "100000"]));
        Assert.True(run.ExitCode == ExitCodes.Interrupted, $"exit {run.ExitCode}: {run.Stderr}");
        Assert.True(run.Wall < TimeSpan.FromSeconds(4) + InterruptCases.ExitBound, $"{run.Wall.TotalSeconds:F1} s");
        // The generated text is the model's (it could say "exception"): the words are looked for on stderr.
        Assert.DoesNotContain("internal error", run.Stderr, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("exception", run.Stderr, StringComparison.OrdinalIgnoreCase);
        // Before the work, the one warning that 100000 new tokens exceed the context (generation stops there); then the one line.
        var lines = run.Stderr.TrimEnd('\n').Split('\n');
        Assert.Equal("interrupted: temporary outputs removed", lines[^1]);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("warning: --max-new-tokens 100000: ", lines[0], StringComparison.Ordinal);
    }
}

public class InterruptEvaluateTests
{
    private static InterruptCases.Artifacts F => InterruptCases.Files;

    [Fact]
    public void Verify_stops_cleanly_on_a_checkpoint_and_an_onnx_export()
    {
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Loading, InterruptCases.None, "verify", F.Example);
        // Working on the medium checkpoint: the example model's whole verify can end within 1.5 s of loading (seen on
        // a fast machine), before the signal; the medium one takes about 4 s.
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.AfterLoading(F.Medium), "verify", F.Medium);
        // An ONNX verify of the example export ends within a second of loading on a quiet machine: signalled while ONNX Runtime loads it.
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Loading, InterruptCases.None, "verify", F.Onnx);
    }

    [Fact]
    public void Diff_and_compare_stop_cleanly()
    {
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Loading, InterruptCases.None, "diff", F.Example, F.Gguf);
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Working, InterruptCases.AfterLoading(F.Example), "diff", F.Example, F.Onnx);
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Working, InterruptCases.StderrShows("comparing"),
            "compare", F.Example, F.Gguf, F.Onnx, "--json-out", "{out}/c.json");
    }

    [Fact]
    public void Imatrix_and_bench_stop_cleanly()
    {
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.AfterLoading(F.Example),
            "imatrix", F.Example, "--text", F.Text, "-o", "{out}/m.imatrix");
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Working, InterruptCases.AfterLoading(F.Example),
            "bench", "forward", F.Example);
    }
}

public class InterruptWriteTests
{
    private static InterruptCases.Artifacts F => InterruptCases.Files;

    [Fact]
    public void Convert_stops_cleanly_while_verifying_and_while_writing_its_outputs()
    {
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.StderrShows("reference logits"),
            "convert", F.Example, "--to", "gguf:q8_0,onnx:int8", "--max-tokens", "512", "--out", "{out}/conv");
        // Exporting into the staging directory beside --out: on the medium checkpoint, whose int8 export lasts long
        // enough to be signalled (the example model's can end, and convert with it, before its line reaches the test).
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Working, InterruptCases.StderrShows("onnx:int8: exporting"),
            "convert", F.Medium, "--to", "gguf:q8_0,onnx:int8", "--random-tokens", "256", "--out", "{out}/conv");
    }

    [Fact]
    public void Merge_kv_stops_cleanly()
    {
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Loading, InterruptCases.None,
            "merge-kv", F.Example, "--groups", "[[1,2]]", "-o", "{out}/merged");
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.AfterLoading(F.Example),
            "merge-kv", F.Example, "--groups", "[[1,2]]", "-o", "{out}/merged");
    }

    [Fact]
    public void Quantize_export_and_init_stop_cleanly_while_writing()
    {
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Working, InterruptCases.Writing,
            "quantize", F.Medium, "--type", "q6_k", "-o", "{out}/m.gguf");
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.Writing,
            "export", F.Medium, "--type", "int4", "-o", "{out}/onnx");
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.Writing,
            "init", "{out}/ck", "--preset", "medium");
    }

    /// <summary>
    /// Inside a layer's work, where nothing but the work's own checks can stop it within 2 s (the watchdog ends a stuck
    /// process only after 3 s): GPTQ signalled once the first layer is done (the second is summing its Hessians,
    /// factoring or sweeping; the ONNX export's walk once its second layer is done), and a bit budget 1.5 s into measuring
    /// the layer-output costs (a layer pass per tensor). Measured when written: 0.06-0.09 s from the signal to the exit
    /// for GPTQ, 0.3-0.8 s for the budget.
    /// </summary>
    [Fact]
    public void Gptq_and_bit_budget_stop_within_2_s_mid_layer()
    {
        var bound = TimeSpan.FromSeconds(2);
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.StderrShows("note: gptq layer 1/"), twice: false, bound,
            "quantize", F.Medium, "--type", "q4_0", "--method", "gptq", "--calibration", F.Text, "-o", "{out}/m.gguf");
        InterruptCases.Check(InterruptibleChild.SigTerm, InterruptCases.Moment.Working, InterruptCases.StderrShows("note: gptq layer 2/"), twice: false, bound,
            "export", F.Medium, "--type", "int4", "--method", "gptq", "--calibration", F.Text, "-o", "{out}/onnx");
        InterruptCases.Check(InterruptibleChild.SigInt, InterruptCases.Moment.Working, InterruptCases.StderrShowedSecondsAgo("note: measuring costs", 1.5), twice: false, bound,
            "quantize", F.Medium, "--target-bpw", "5.5", "--cost", "layer", "--calibration", F.Text, "-o", "{out}/b.gguf");
    }
}
