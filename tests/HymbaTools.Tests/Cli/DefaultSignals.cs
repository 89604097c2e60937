using System.Diagnostics;

namespace HymbaTools.Tests.Cli;

/// <summary>
/// A program that a shell starts in the background without job control inherits SIGINT ignored (POSIX), and so
/// does everything it starts: a test host run that way would hand every child an ignored SIGINT, and hymba, like any
/// Unix tool, keeps an inherited SIG_IGN (a background job must not stop on the terminal's Ctrl-C). Children that a
/// test interrupts therefore start through coreutils' <c>env --default-signal=INT</c>, so that the test checks the
/// Ctrl-C that a user's terminal delivers, however the suite itself was started.
/// </summary>
internal static class DefaultSignals
{
    public static ProcessStartInfo Start(string program, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("env") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("--default-signal=INT");
        info.ArgumentList.Add(program);
        foreach (string a in args) info.ArgumentList.Add(a);
        return info;
    }
}
