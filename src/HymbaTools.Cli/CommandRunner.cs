using HymbaTools.Common;

namespace HymbaTools.Cli;

/// <summary>
/// The one place that maps library errors to exit codes: input errors print one line on stderr and return 2,
/// anything else is a bug and surfaces with its stack trace.
/// </summary>
internal static class CommandRunner
{
    public static int Run(TextWriter stderr, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (HymbaInputException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.InvalidInput;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("error: cancelled");
            return ExitCodes.InvalidInput;
        }
    }
}
