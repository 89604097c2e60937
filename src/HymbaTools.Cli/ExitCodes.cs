namespace HymbaTools.Cli;

/// <summary>Process exit codes. 1 is also what System.CommandLine returns for a usage error.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    /// <summary>The check ran and found a difference beyond tolerance (verify, compare).</summary>
    public const int CheckFailed = 1;
    /// <summary>Bad or unsupported input: a file, a tensor, a config field or an option value.</summary>
    public const int InvalidInput = 2;
}
