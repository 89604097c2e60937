using System.Runtime.ExceptionServices;
using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>
/// Runs independent pieces of libtorch work on several threads, each piece single-threaded inside libtorch. Work
/// whose results become file bytes is cut into a fixed partition (one piece per calibration chunk, one per column
/// block) that does not depend on the thread count, so the bytes are the same at any --threads while the pieces
/// still use every core. Dedicated threads rather than the pool: libtorch's thread setting is per OS thread for
/// OpenMP (a fresh thread would split its sums by the core count) and autograd's no_grad is per thread too.
/// </summary>
internal static class TorchWorkers
{
    /// <summary>Column block width of the fixed partitions of matrix work (Gram matrices, the inverse factor): part of the bytes, never the thread count.</summary>
    public const int FixedBlockColumns = 256;

    /// <summary>Calls <paramref name="body"/> once for every index in [0, count) on up to <paramref name="threads"/> threads; rethrows the first failure.</summary>
    public static void For(int count, int threads, Action<int> body)
    {
        if (count <= 0) return;
        int workers = Math.Clamp(threads, 1, count);
        if (workers == 1)
        {
            using var pin = TorchThreadPin.Single();
            using var grad = no_grad();
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        // The caller's libtorch stays on one thread while the workers run (MKL's setting is process-wide).
        using var callerPin = TorchThreadPin.Single();
        int next = -1;
        ExceptionDispatchInfo? failure = null;
        var pool = new Thread[workers];
        for (int w = 0; w < workers; w++)
        {
            pool[w] = new Thread(() =>
            {
                try
                {
                    set_num_threads(1);
                    using var grad = no_grad();
                    for (int i; (i = Interlocked.Increment(ref next)) < count && Volatile.Read(ref failure) is null;) body(i);
                }
                catch (Exception e) { Interlocked.CompareExchange(ref failure, ExceptionDispatchInfo.Capture(e), null); }
            }, maxStackSize: 16 << 20) { IsBackground = true, Name = "hymba-torch-worker" };
            pool[w].Start();
        }
        foreach (var t in pool) t.Join();
        failure?.Throw();
    }
}
