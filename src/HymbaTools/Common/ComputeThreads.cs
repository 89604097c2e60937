namespace HymbaTools.Common;

/// <summary>
/// How many threads computing work may use: quantizing, the reference forward pass (libtorch and the selective
/// scan), ONNX Runtime sessions, writing random checkpoints. All cores unless the CLI's --threads says otherwise.
/// Quantized and converted files are the same bytes at any count (tested at 1 and all threads); forward-pass
/// logits can differ in the last bits, because libtorch splits its sums by thread (verify's tolerances hold at
/// any count). One value per process, as libtorch's own thread count is: two runs that should give the same logits
/// must not straddle a change of it (the tests that pass --threads run hymba as a child process for that reason).
/// </summary>
public static class ComputeThreads
{
    private static int _count = Environment.ProcessorCount;
    private static int _explicit;

    public static int Count => Volatile.Read(ref _count);

    /// <summary>Whether a count was asked for (--threads); otherwise libraries keep their own defaults (libtorch's, for one).</summary>
    public static bool IsExplicit => Volatile.Read(ref _explicit) > 0;

    public static ParallelOptions ParallelOptions => new() { MaxDegreeOfParallelism = Count };

    /// <summary>Sets the count until the returned scope is disposed (then the previous count is back).</summary>
    public static IDisposable Use(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        int previous = Interlocked.Exchange(ref _count, count);
        Interlocked.Increment(ref _explicit);
        return new Restore(previous);
    }

    private sealed class Restore(int previous) : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            Volatile.Write(ref _count, previous);
            Interlocked.Decrement(ref _explicit);
        }
    }
}
