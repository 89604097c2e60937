using System.Runtime.InteropServices;
using HymbaTools.Common;

namespace HymbaTools.Cli;

/// <summary>
/// SIGINT and SIGTERM (README "Exit codes"). The handler never stops the process itself: it asks the work to stop
/// (<see cref="Interruption.Request"/>) and returns. The command's thread notices at its next check, unwinds (no
/// native call is left running then), and <see cref="Finish"/> removes the temporary outputs, prints one line and
/// ends the process with 130 or 143 through _exit: neither libtorch's static destructors nor the finalizers of
/// tensors run, since they would race the native thread pools. A watchdog bounds the wait: when the command has
/// not unwound within <see cref="Grace"/> (a native call that does not return), it finishes from its own thread;
/// a second signal finishes at once.
/// </summary>
internal static class InterruptHandler
{
    /// <summary>How long the command may take to reach its next check and unwind before the watchdog ends the process.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(3);
    /// <summary>How long a finish in progress (removing large temporaries) may take before the watchdog ends the process regardless.</summary>
    private static readonly TimeSpan CleanupBound = TimeSpan.FromSeconds(5);

    private static int _exitCode;
    private static int _finishing;
    private static readonly ManualResetEventSlim Finishing = new(false);

    /// <summary>130 (SIGINT) or 143 (SIGTERM) once a signal arrived; 0 before.</summary>
    public static int ExitCode => Volatile.Read(ref _exitCode);

    public static bool Received => ExitCode != 0;

    /// <summary>Registers the handlers until disposed (then a signal has its default effect again).</summary>
    public static IDisposable Install() => new Registrations(
        PosixSignalRegistration.Create(PosixSignal.SIGINT, context => OnSignal(context, ExitCodes.Interrupted)),
        PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => OnSignal(context, ExitCodes.Terminated)));

    private static void OnSignal(PosixSignalContext context, int exitCode)
    {
        context.Cancel = true;
        if (Interlocked.CompareExchange(ref _exitCode, exitCode, 0) != 0)
        {
            // A second signal: the user does not want to wait for the command to unwind.
            StartThread(Finish);
            return;
        }
        Interruption.Request();
        StartThread(() =>
        {
            Thread.Sleep(Grace);
            Finish();
        });
    }

    private static void StartThread(Action action) => new Thread(() => action()) { IsBackground = true, Name = "hymba interrupt" }.Start();

    /// <summary>
    /// Removes this process's temporary outputs, prints the one line, flushes and ends the process with the
    /// signal's exit code. The first caller does it; a later caller (the watchdog) waits for it within a bound and
    /// then ends the process itself, without a second line.
    /// </summary>
    public static void Finish()
    {
        int code = ExitCode == 0 ? ExitCodes.Interrupted : ExitCode;
        if (Interlocked.Exchange(ref _finishing, 1) == 1)
        {
            Finishing.Wait(CleanupBound);
            Exit(code);
        }
        TemporaryPaths.DeleteAll();
        try
        {
            // On a terminal the line starts on its own (after a progress line, streamed text or the echoed ^C).
            if (ConsoleProgress.LineOpen || !Console.IsErrorRedirected) Console.Error.WriteLine();
            Console.Error.WriteLine(code == ExitCodes.Interrupted ? "interrupted: temporary outputs removed" : "terminated: temporary outputs removed");
            Console.Out.Flush();
            Console.Error.Flush();
        }
        catch (IOException) { /* a closed pipe: the exit code still says it */ }
        ChildProcess.ReportPeakIfRequested();
        Exit(code);
    }

    /// <summary>Ends the process now: no atexit handlers, no static destructors, no finalizers.</summary>
    private static void Exit(int code)
    {
        Finishing.Set();
        ExitNow(code);
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void ExitNow(int status);

    private sealed class Registrations(params IDisposable[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items) item.Dispose();
        }
    }
}
