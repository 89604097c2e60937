using System.CommandLine;
using HymbaTools.Cli.Commands;

namespace HymbaTools.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        // An interrupt stops the work at its next check, removes this process's temporary outputs and exits 130
        // (SIGINT) or 143 (SIGTERM) with one line; nothing half-written is left beside a destination (InterruptHandler).
        int exitCode;
        using (InterruptHandler.Install())
            exitCode = Run(args, Console.Out, Console.Error);
        // Registrations are gone now: a later signal has its default effect (the process ends by it, 130/143 to a shell).
        if (InterruptHandler.Received) InterruptHandler.Finish();
        ChildProcess.ReportPeakIfRequested();
        return exitCode;
    }

    /// <summary>Entry point used by tests: runs the CLI in-process with captured output (and, when given, its own environment lookups for the HuggingFace cache).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, Func<string, string?>? environment = null)
    {
        using var scope = CheckpointInput.UseEnvironment(environment);
        var errors = new CliErrorWriter(stderr, interactive: ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected);
        stderr = errors;
        var root = new RootCommand("hymba: read, verify, quantize and export NVIDIA Hymba hybrid-head models (HuggingFace checkpoints).\n" +
            "A checkpoint is a directory, or a Hub id ORG/NAME[@REVISION] read from the local HuggingFace cache (never downloaded; a local path of the same name wins).\n" +
            "Exit codes: 0 success; 1 a check or gate failed (the output says which); 2 bad input or usage (one line naming the file, field or option); " +
            "3 internal error (one line; the trace in a file, or on stderr with --verbose); 130/143 interrupted (temporary outputs removed).")
        {
            CommandRunner.Verbose,
            CommandRunner.Quiet,
            CommandRunner.Threads,
            InspectCommand.Create(stdout, stderr),
            InitCommand.Create(stdout, stderr),
            VerifyCommand.Create(stdout, stderr),
            BenchCommand.Create(stdout, stderr),
            QuantizeCommand.Create(stdout, stderr),
            ExportCommand.Create(stdout, stderr),
            ImatrixCommand.Create(stdout, stderr),
            MergeKvCommand.Create(stdout, stderr),
            TrainCommand.Create(stdout, stderr),
            GenerateCommand.Create(stdout, stderr),
            CompareCommand.Create(stdout, stderr),
            DiffCommand.Create(stdout, stderr),
            ConvertCommand.Create(stdout, stderr),
            ConvertCommand.Report(stdout, stderr),
        };
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && !(UnknownOptions.Find(parse) == "--version")) return CommandRunner.UsageErrors(parse, stderr);
        if (CommandRunner.LateUsageErrors(parse, stdout, stderr) is { } usage) return usage;
        errors.Quiet = parse.GetValue(CommandRunner.Quiet);
        return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }
}
