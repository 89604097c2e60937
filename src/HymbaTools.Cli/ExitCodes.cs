namespace HymbaTools.Cli;

/// <summary>Process exit codes (README "Exit codes").</summary>
public static class ExitCodes
{
    public const int Success = 0;
    /// <summary>A check or gate ran and failed (verify, compare); the output says which.</summary>
    public const int CheckFailed = 1;
    /// <summary>Bad or unsupported input or usage: a file, a tensor, a config field or an option value.</summary>
    public const int InvalidInput = 2;
    /// <summary>An internal error: a bug. One line on stderr; the trace in a file (or on stderr with --verbose).</summary>
    public const int InternalError = 3;
    /// <summary>Interrupted by SIGINT (128 + 2); temporary outputs were removed.</summary>
    public const int Interrupted = 130;
    /// <summary>Terminated by SIGTERM (128 + 15); temporary outputs were removed.</summary>
    public const int Terminated = 143;
}
