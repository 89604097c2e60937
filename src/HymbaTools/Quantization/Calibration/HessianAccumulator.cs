using HymbaTools.Common;
using HymbaTools.Model;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Calibration;

/// <summary>
/// The Hessians H = XᵀX of the inputs of linear weights (X: every calibration row that enters the weight), summed in
/// place as the rows arrive: each chunk's rows are added to a float32 [n, n] sum at the moment the chunk's pass
/// reaches the weight, and dropped. Chunks run on worker threads; a chunk waits for the chunks before it to have
/// added their rows at the same point, so the sums are added in chunk order and are the same bits at any --threads.
/// Each chunk's product is one single-threaded float32 product per fixed 256-column block (its lower part only:
/// H is symmetric). float32 halves what a layer's sums hold while its pass runs (Hymba-1.5B: 224 MB instead of 447 MB,
/// the largest part of the walk's peak); a sum of a few chunk products loses nothing the float64 factorisation that
/// follows (1 % damping) would notice.
/// <para>
/// Stored for GPTQ's factor (<c>Gptq/HessianFactor</c>): the sum is of X with its columns reversed (JHJ, J the
/// order reversal) and only its lower triangle and diagonal blocks are written. Every chunk starts with the same
/// meta tokens, whose rows are therefore identical in every chunk (they see nothing of the text): they are
/// added once, weighted by the chunk count, which is the same H with a third less work at Hymba-1.5B.
/// </para>
/// </summary>
internal sealed class HessianAccumulator : ChunkRecording, IDisposable
{
    private const int BlockColumns = TorchWorkers.FixedBlockColumns;

    private sealed class Sum(Tensor values)
    {
        public Tensor Values { get; } = values;
        public int NextChunk;
        public long Rows;
    }

    private readonly Func<int, ActivationPoint, bool> _wanted;
    private readonly int _chunks;
    private readonly long _metaRows;
    private readonly Dictionary<(int Layer, ActivationPoint Point), Sum> _sums = [];
    private readonly object _gate = new();
    private bool _abandoned;

    /// <param name="wanted">the (layer, point) pairs to sum (a point no weight is rounded at costs nothing)</param>
    /// <param name="chunks">the number of chunks that will be recorded</param>
    /// <param name="metaRows">rows at the start of every chunk that are the same in every chunk (the meta tokens)</param>
    public HessianAccumulator(Func<int, ActivationPoint, bool> wanted, int chunks, long metaRows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunks, 1);
        _wanted = wanted;
        _chunks = chunks;
        _metaRows = metaRows;
    }

    public override IActivationRecorder For(int chunk) => new ChunkRecorder(this, chunk);

    public override void Abandon()
    {
        lock (_gate)
        {
            _abandoned = true;
            Monitor.PulseAll(_gate);
        }
    }

    private sealed class ChunkRecorder(HessianAccumulator owner, int chunk) : IActivationRecorder
    {
        public void Record(int layer, ActivationPoint point, Tensor activation)
        {
            if (owner._wanted(layer, point)) owner.Add(layer, point, chunk, activation);
        }
    }

    private void Add(int layer, ActivationPoint point, int chunk, Tensor activation)
    {
        Interruption.ThrowIfRequested();
        long cols = activation.shape[^1];
        using var scope = NewDisposeScope();
        var rows = activation.detach().reshape(-1, cols).to(ScalarType.Float32).flip(1);   // JX: the reversed order the factor works in
        long meta = Math.Min(_metaRows, rows.shape[0]);
        var sum = WaitForTurn(layer, point, chunk, cols);
        try
        {
            if (chunk == 0 && meta > 0) AddProduct(sum.Values, rows.narrow(0, 0, meta), _chunks);
            AddProduct(sum.Values, rows.narrow(0, meta, rows.shape[0] - meta), 1);
            sum.Rows += rows.shape[0] - meta + (chunk == 0 ? meta * _chunks : 0);
        }
        finally
        {
            lock (_gate)
            {
                sum.NextChunk = chunk + 1;
                Monitor.PulseAll(_gate);
            }
        }
    }

    /// <summary>The sum of a point, once every chunk before <paramref name="chunk"/> has added its rows to it.</summary>
    private Sum WaitForTurn(int layer, ActivationPoint point, int chunk, long cols)
    {
        lock (_gate)
        {
            while (true)
            {
                if (_abandoned) throw new OperationCanceledException("another calibration chunk failed");
                if (!_sums.TryGetValue((layer, point), out var sum) && chunk == 0)
                {
                    if (cols * cols > int.MaxValue) throw new ArgumentException($"a Hessian of {cols} columns is too large");
                    _sums[(layer, point)] = sum = new Sum(zeros([cols, cols], ScalarType.Float32).DetachFromDisposeScope());
                }
                if (sum is not null && sum.NextChunk == chunk) return sum;
                Monitor.Wait(_gate, 100);
                Interruption.ThrowIfRequested();
            }
        }
    }

    /// <summary>sum[c0:, c0:c1] += weight · X[:, c0:]ᵀ X[:, c0:c1] for each fixed column block: the lower triangle and the diagonal blocks.</summary>
    private static void AddProduct(Tensor sum, Tensor rows, double weight)
    {
        if (rows.shape[0] == 0) return;
        long n = sum.shape[0];
        var alpha = TorchScalars.Of(weight);
        for (long c0 = 0; c0 < n; c0 += BlockColumns)
        {
            Interruption.ThrowIfRequested();
            long width = Math.Min(BlockColumns, n - c0);
            using var scope = NewDisposeScope();
            var tail = rows.narrow(1, c0, n - c0);
            var product = tail.t().matmul(rows.narrow(1, c0, width));   // [n - c0, width], float32
            sum.narrow(0, c0, n - c0).narrow(1, c0, width).add_(product, alpha);
        }
    }

    /// <summary>The rows summed at a point (meta rows counted once per chunk), or 0 when nothing was recorded there.</summary>
    public long Rows(int layer, ActivationPoint point) => _sums.TryGetValue((layer, point), out var s) ? s.Rows : 0;

    /// <summary>diag(H) / rows in the weight's column order: the mean squared input per column, or null when nothing was recorded.</summary>
    public float[]? MeanSquares(int layer, ActivationPoint point)
    {
        if (!_sums.TryGetValue((layer, point), out var s) || s.Rows == 0) return null;
        using var scope = NewDisposeScope();
        var diagonal = s.Values.diagonal().flip(0).contiguous().data<float>().ToArray();
        return [.. diagonal.Select(v => (float)(v / (double)s.Rows))];
    }

    /// <summary>
    /// Hands a point's sum over to the caller (who factors it and disposes it): float32 [n, n] of the reversed
    /// inputs, lower triangle and diagonal blocks written; null when nothing was recorded there.
    /// </summary>
    public Tensor? Take(int layer, ActivationPoint point) => _sums.Remove((layer, point), out var s) ? s.Values : null;

    public void Dispose()
    {
        foreach (var s in _sums.Values) s.Values.Dispose();
        _sums.Clear();
    }
}
