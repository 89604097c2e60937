using System.Diagnostics;

namespace HymbaTools.Tests.Cli;

/// <summary>Runs the `hymba` root command in-process (or as a child process) and captures its output.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string FirstErrorLine => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "";
    }

    public static Result Run(params string[] args) => RunWith(null, args);

    /// <summary>In-process, with environment lookups of this call's own (the HuggingFace cache location) instead of the process's.</summary>
    public static Result RunWith(Func<string, string?>? environment, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = HymbaTools.Cli.Program.Run(args, stdout, stderr, environment);
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>
    /// As a child process in <paramref name="workingDirectory"/>, with environment variables set (a null value
    /// removes one): what the process-wide environment and current directory do can only be seen from outside.
    /// </summary>
    public static Result RunProcess(string workingDirectory, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
            ArgumentList = { typeof(HymbaTools.Cli.Program).Assembly.Location },
        };
        foreach (string a in args) info.ArgumentList.Add(a);
        foreach (var (name, value) in environment)
            if (value is null) info.Environment.Remove(name); else info.Environment[name] = value;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"hymba {string.Join(' ', args)} did not finish in 2 minutes");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
