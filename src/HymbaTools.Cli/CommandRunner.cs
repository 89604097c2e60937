using System.CommandLine;
using HymbaTools.Common;

namespace HymbaTools.Cli;

/// <summary>
/// The one place that maps what a command threw to an exit code (README "Exit codes"): bad input or usage -> 2
/// with one line naming the file, field or option; an interrupt -> 130/143 (whatever the work threw once asked to stop; the line is Program's); anything else is a bug -> 3 with one line
/// and the trace in a file (on the terminal only with --verbose). A stack trace never reaches the terminal otherwise.
/// </summary>
internal static class CommandRunner
{
    /// <summary>Global options, recognised on every command.</summary>
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Print the full trace of an internal error on stderr (it is always written to a file)", Recursive = true };
    public static readonly Option<bool> Quiet = new("--quiet", "-q") { Description = "Print only results, errors and warnings (no progress, no notes)", Recursive = true };
    public static readonly Option<int?> Threads = new("--threads") { Description = "Threads for computing work: quantizing, forward passes, ONNX Runtime (default: all cores). Quantized files are the same bytes at any count; logits can differ in the last bits (libtorch splits sums by thread)", Recursive = true };

    public static int Run(ParseResult parse, TextWriter stderr, Func<int> action)
    {
        try
        {
            if (parse.GetValue(Threads) is not int threads) return action();
            if (threads < 1) throw new InvalidRequestException("--threads", $"{threads}, expected >= 1");
            using (ComputeThreads.Use(threads)) return action();
        }
        catch (Exception) when (Interruption.IsRequested)
        {
            // Whatever the work threw once asked to stop (the check's OperationCanceledException, or a native
            // call's own error) is the interrupt: Program prints its one line after the cleanup.
            return InterruptHandler.Received ? InterruptHandler.ExitCode : ExitCodes.Interrupted;
        }
        catch (HymbaInputException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.InvalidInput;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The file system said no (a full disk, a read-only place, a file that vanished): input, not a bug.
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.InvalidInput;
        }
        catch (Exception e)
        {
            string trace = WriteTrace(e);
            stderr.WriteLine($"internal error: {e.GetType().Name}: {FirstLine(e.Message)} (a bug in hymba; the trace is in {trace})");
            if (parse.GetValue(Verbose)) stderr.WriteLine(e);
            return ExitCodes.InternalError;
        }
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    private static string WriteTrace(Exception e)
    {
        string path = Path.Combine(Path.GetTempPath(), $"hymba-error-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.txt");
        try { File.WriteAllText(path, $"hymba {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}\n{e}\n"); }
        catch (Exception io) when (io is IOException or UnauthorizedAccessException) { return "(no file: " + io.Message + ")"; }
        return path;
    }

    /// <summary>Parse errors are usage errors: one line each and exit 2 (System.CommandLine's own default is 1, a failed check's code).</summary>
    /// <summary>
    /// Usage errors the parser lets through: an option-like word taken as an argument (`compare -o x` as an artifact
    /// named "-o"). `--version` after a command prints the version, as the root's does. Null when the line is fine.
    /// </summary>
    public static int? LateUsageErrors(ParseResult parse, TextWriter stdout, TextWriter stderr)
    {
        if (UnknownOptions.Find(parse) is not { } unknown) return null;
        if (unknown == "--version")
        {
            stdout.WriteLine(Version);
            return ExitCodes.Success;
        }
        stderr.WriteLine(UnknownOptions.Message(parse, unknown));
        return ExitCodes.InvalidInput;
    }

    /// <summary>What `hymba --version` prints: the CLI assembly's informational version.</summary>
    public static string Version =>
        typeof(CommandRunner).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";

    public static int UsageErrors(ParseResult parse, TextWriter stderr)
    {
        // A word that looks like an option explains every other error of the line ("--tpye q8_0" also leaves --type
        // missing and q8_0 unmatched): one line naming it and the closest option.
        if (UnknownOptions.Find(parse) is { } unknown)
        {
            stderr.WriteLine(UnknownOptions.Message(parse, unknown));
            return ExitCodes.InvalidInput;
        }
        foreach (var error in parse.Errors) stderr.WriteLine($"error: {error.Message}");
        string command = parse.CommandResult.Command is RootCommand ? "" : parse.CommandResult.Command.Name + " ";
        stderr.WriteLine($"(see 'hymba {command}--help')");
        return ExitCodes.InvalidInput;
    }
}
