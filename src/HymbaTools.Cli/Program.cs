using System.CommandLine;
using System.Runtime.InteropServices;
using HymbaTools.Cli.Commands;

namespace HymbaTools.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        // An interrupt removes this process's temporary outputs and exits 130 (SIGINT) or 143 (SIGTERM); nothing
        // half-written is left beside a destination.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Stop(context, ExitCodes.Interrupted));
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Stop(context, ExitCodes.Terminated));
        int exitCode = Run(args, Console.Out, Console.Error);
        ChildProcess.ReportPeakIfRequested();
        return exitCode;
    }

    private static void Stop(PosixSignalContext context, int exitCode)
    {
        context.Cancel = true;
        HymbaTools.Common.TemporaryPaths.DeleteAll();
        Console.Error.WriteLine();
        Console.Error.WriteLine(exitCode == ExitCodes.Interrupted ? "interrupted: temporary outputs removed" : "terminated: temporary outputs removed");
        Environment.Exit(exitCode);
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
