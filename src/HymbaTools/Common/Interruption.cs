namespace HymbaTools.Common;

/// <summary>
/// The process-wide request to stop (README "Exit codes": SIGINT/SIGTERM). The CLI's signal handler only calls
/// <see cref="Request"/> and returns; the work notices at its next check and unwinds on its own thread. Checks sit
/// where the work is cut into short steps: between layers of the forward pass, between tensors of a load or a
/// write, between chunks of quantizing and hashing. ONNX Runtime runs are stopped through their RunOptions
/// (<see cref="Token"/> registrations). Stopping this way never disposes a tensor or a session while a native
/// call on another thread still uses it, which is what crashed libtorch when the handler exited the process.
/// One per process, as signals are: a test that requests it must run in a child process.
/// </summary>
public static class Interruption
{
    private static readonly CancellationTokenSource Source = new();

    /// <summary>Cancelled once a stop was requested (register callbacks that stop native work, such as ONNX Runtime's RunOptions.Terminate).</summary>
    public static CancellationToken Token => Source.Token;

    public static bool IsRequested => Source.IsCancellationRequested;

    /// <summary>Asks every running piece of work to stop at its next check (runs the token's callbacks on the caller's thread).</summary>
    public static void Request()
    {
        try { Source.Cancel(); }
        catch (AggregateException) { /* a callback failed: the checks still see the request */ }
    }

    /// <summary>Throws <see cref="OperationCanceledException"/> when a stop was requested.</summary>
    public static void ThrowIfRequested() => Source.Token.ThrowIfCancellationRequested();
}
