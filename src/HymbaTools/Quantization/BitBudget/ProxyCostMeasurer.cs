using HymbaTools.Model;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Quantization.BitBudget;

/// <summary>
/// A cost that needs no forward per tensor (for models too large for <see cref="KlCostMeasurer"/>):
/// Σ_ij imatrix_j (w_ij − q_ij)², the squared error the rounded tensor adds to its output per calibration token
/// (the diagonal of the input Hessian, which is what the importance matrix holds). Rows stream in bounded
/// chunks; partial sums are added in row order, so the value is the same at any thread count. How well it
/// ranks tensors as KL does is measured on the example model (README). The scale search is importance-weighted
/// only when the export's is (a user's --imatrix).
/// </summary>
internal static class ProxyCostMeasurer
{
    private const int ChunkRows = 256;

    public static TensorCosts Measure(IReadOnlyList<StoredTensor> tensors, Func<StoredTensor, RowSource> rowsOf, Action<StoredTensor> release, ImportanceMatrix importance,
        bool weightedSearch, IProgress<(long Done, long Total)>? progress = null)
    {
        var costs = new TensorCosts(CostMeasure.Proxy, RoundingMethod.Rtn);   // the proxy rounds plainly, whatever the export does
        long total = tensors.Sum(t => t.ElementCount), done = 0;
        foreach (var t in tensors)
        {
            int cols = checked((int)t.Columns);
            var types = CandidateTypes.For(t).Where(type => type != GgmlType.F16).ToList();
            if (types.Count == 0) continue;
            var weights = importance.For(t.Name, cols);
            var sums = Measure(t, cols, types, rowsOf(t), weights, weightedSearch);
            for (int k = 0; k < types.Count; k++) costs.Set(t.Name, types[k], sums[k]);
            release(t);
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);   // bounded memory on 1.5B-sized tensors
            progress?.Report((done += t.ElementCount, total));
        }
        return costs;
    }

    /// <summary>The proxy of one tensor at each of <paramref name="types"/>, its rows read from <paramref name="rows"/> (every <paramref name="rowStride"/>-th row).</summary>
    internal static double[] Measure(StoredTensor t, int cols, IReadOnlyList<GgmlType> types, RowSource rows, float[]? importance, bool weightedSearch, int rowStride = 1)
    {
        var totals = new double[types.Count];
        long rowCount = t.Rows;
        int chunks = (int)((rowCount + ChunkRows - 1) / ChunkRows);
        var partial = new double[chunks, types.Count];
        Parallel.For(0, chunks, Common.ComputeThreads.ParallelOptions, () => (Row: new float[cols], Bytes: new byte[GgmlTypes.RowBytes(GgmlType.Q8_0, cols) * 2], Back: new float[cols]),
            (chunk, _, buffers) =>
            {
                Common.Interruption.ThrowIfRequested();
                long first = (long)chunk * ChunkRows, end = Math.Min(rowCount, first + ChunkRows);
                for (long r = first; r < end; r++)
                {
                    if (r % rowStride != 0) continue;
                    rows(r, 1, buffers.Row);
                    for (int k = 0; k < types.Count; k++)
                    {
                        var format = BlockFormatRegistry.Get(types[k]);
                        int bytes = (int)GgmlTypes.RowBytes(types[k], cols);
                        format.QuantizeRow(buffers.Row, buffers.Bytes.AsSpan(0, bytes), format.UsesImportance && weightedSearch && importance is not null ? importance : default);
                        format.DequantizeRow(buffers.Bytes.AsSpan(0, bytes), buffers.Back);
                        double sum = 0;
                        for (int j = 0; j < cols; j++)
                        {
                            double e = buffers.Row[j] - buffers.Back[j];
                            sum += (importance is null ? 1 : importance[j]) * e * e;
                        }
                        partial[chunk, k] += sum;
                    }
                }
                return buffers;
            }, _ => { });
        for (int c = 0; c < chunks; c++)
            for (int k = 0; k < types.Count; k++) totals[k] += partial[c, k];
        return totals;
    }
}
