using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>
/// Runs libtorch on one thread until disposed: libtorch splits its sums by thread, so calibration forwards and
/// factorisations whose results become file bytes run single-threaded to give the same bytes at any --threads.
/// </summary>
internal sealed class TorchThreadPin : IDisposable
{
    private static readonly object Gate = new();
    private readonly int _previous;
    private bool _disposed;

    private TorchThreadPin(int previous) => _previous = previous;

    public static TorchThreadPin Single()
    {
        lock (Gate)
        {
            int previous = get_num_threads();
            if (previous != 1) set_num_threads(1);
            return new TorchThreadPin(previous);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (Gate)
            if (get_num_threads() != _previous) set_num_threads(_previous);
    }
}
