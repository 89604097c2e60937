using HymbaTools.Formats.Gguf;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Quantization.BlockFormats;
using HymbaTools.Quantization.Calibration;
using HymbaTools.Quantization.Gptq;
using HymbaTools.Quantization.Onnx;
using HymbaTools.Tests.TestData;
using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Tests.Quantization;

public class GptqTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    internal static long[][] RandomChunks(int chunks, int length, int vocab, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, chunks).Select(_ => Enumerable.Range(0, length).Select(_ => (long)random.Next(vocab)).ToArray())];
    }

    /// <summary>Every row recorded at one (layer, point), kept in chunk order: the rows the Hessian should be the Gram matrix of.</summary>
    private sealed class RowsRecording(int layer, ActivationPoint point, int chunks) : ChunkRecording
    {
        private readonly List<float[]>[] _rows = [.. Enumerable.Range(0, chunks).Select(_ => new List<float[]>())];

        public override IActivationRecorder For(int chunk) => new Recorder(this, chunk);

        private sealed class Recorder(RowsRecording owner, int chunk) : IActivationRecorder
        {
            public void Record(int l, ActivationPoint p, Tensor activation)
            {
                if (l != owner._layer || p != owner._point) return;
                owner._rows[chunk].Add(activation.detach().reshape(-1, activation.shape[^1]).contiguous().data<float>().ToArray());
            }
        }

        private readonly int _layer = layer;
        private readonly ActivationPoint _point = point;

        /// <summary>XᵀX in float64 over every row of every chunk, row-major [n, n].</summary>
        public double[] Gram(int n)
        {
            var gram = new double[n * n];
            foreach (var values in _rows.SelectMany(r => r))
                for (int r = 0; r < values.Length / n; r++)
                    for (int i = 0; i < n; i++)
                    {
                        double xi = values[r * n + i];
                        for (int j = 0; j < n; j++) gram[i * n + j] += xi * values[r * n + j];
                    }
            return gram;
        }
    }

    /// <summary>The exact Gram matrix of the inputs at a fixture point, and the walk's own factors of the same layer.</summary>
    private static (double[] Gram, FactorCache Factors) FixtureHessian(HymbaCheckpoint ckpt, int layer, ActivationPoint point, int n, long[][] chunks)
    {
        var source = new CheckpointTensorSource(ckpt);
        var rows = new RowsRecording(layer, point, chunks.Length);
        using (var activations = new CalibrationActivations(source, chunks, 1))
            foreach (var plan in ckpt.Config.Layers.Take(layer + 1))
            {
                var weights = HymbaWeights.LoadLayer(source, plan);
                activations.Advance(weights, rows);
                HymbaWeights.DisposeLayer(weights, ownsTensors: true);
            }
        return (rows.Gram(n), FactorCache.Measure(source, chunks, 1));
    }

    /// <summary>‖(W − Q) X‖² = Σ_rows Δ H Δᵀ with H = XᵀX (float64).</summary>
    private static double OutputError(float[] w, float[] q, int rows, int cols, double[] gram)
    {
        double total = 0;
        var delta = new double[cols];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < cols; j++) delta[j] = (double)w[r * cols + j] - q[r * cols + j];
            for (int i = 0; i < cols; i++)
            {
                double s = 0;
                for (int j = 0; j < cols; j++) s += gram[i * cols + j] * delta[j];
                total += delta[i] * s;
            }
        }
        return total;
    }

    private static float[] Plain(GgmlType type, float[] w, int cols) =>
        TensorQuantizer.Dequantize(type, TensorQuantizer.Quantize(type, w, cols), w.Length);

    /// <summary>A Hessian given in weight order as the factor takes it: the columns reversed (JHJ), float64.</summary>
    private static InverseHessianFactor Factor(Tensor h, int threads = 1) => HessianFactor.Compute(h.to(ScalarType.Float64).flip(0, 1).contiguous(), threads);

    public static IEnumerable<object[]> Cases() =>
        from type in new[] { "Q4_0", "IQ4_NL", "Q4_1", "Q5_0", "Q5_1", "Q8_0" }
        from tensor in new[] { "blk.1.ssm_in.weight", "blk.1.ffn_down.weight", "blk.2.mixer_out.weight" }
        select new object[] { type, tensor };

    /// <summary>
    /// A fixture layer (tiny-a, layer 1 and 2) with the Hessian of its real inputs over 4 x 64 tokens: GPTQ's
    /// blocks give a smaller output error ‖WX − QX‖ (measured with the exact XᵀX of the recorded rows) than plain
    /// rounding into the same type, decode with the existing dequantizer to exactly the weights the sweep assumed,
    /// and hold no NaN.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Gptq_reduces_the_output_error_of_a_fixture_layer_against_plain_rounding(string typeName, string tensorName)
    {
        Assert.True(GgmlTypes.TryParse(typeName, out var type));
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA);
        var config = ckpt.Config;
        var tensor = HymbaStorageLayout.For(config).Single(t => t.Name == tensorName);
        int rows = (int)tensor.Rows, cols = (int)tensor.Columns;
        var point = ImportanceMatrix.PointOf(tensor.Role, config.TieWordEmbeddings)!.Value;
        var (gram, factors) = FixtureHessian(ckpt, tensor.Layer, point, cols, RandomChunks(4, 64, config.VocabSize, 3));
        using var _ = factors;
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        var w = WeightSlots.Of(model.Weights, tensor)!.Value.Read();

        var rounded = CompensatedTensorRounding.Round(tensor, type, w, factors, config, null)!;
        var decoded = TensorQuantizer.Dequantize(type, rounded.Bytes, w.Length);
        Assert.Equal(rounded.Dequantized, decoded);
        Assert.All(decoded, v => Assert.True(float.IsFinite(v)));
        double plain = OutputError(w, Plain(type, w, cols), rows, cols, gram);
        double gptq = OutputError(w, decoded, rows, cols, gram);
        Assert.True(gptq < 0.9 * plain, $"{typeName} {tensorName}: GPTQ {gptq:G4} vs plain {plain:G4} ({gptq / plain:P1})");
    }

    /// <summary>
    /// MatMulNBits blocks from the sweep: the packer's own dequantizer (the operator's layout) reads back exactly the
    /// weights the sweep assumed, and the output error on a fixture layer is below round-to-nearest's.
    /// </summary>
    [Theory]
    [InlineData(4, 32)]
    [InlineData(4, 64)]
    [InlineData(8, 32)]
    public void Gptq_matmulnbits_blocks_decode_as_the_operator_reads_them_and_reduce_the_error(int bits, int blockSize)
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA);
        var config = ckpt.Config;
        var tensor = HymbaStorageLayout.For(config).Single(t => t.Name == "blk.1.mixer_out.weight");   // 128 columns: whole blocks of 32 and 64
        int rows = (int)tensor.Rows, cols = (int)tensor.Columns;
        var (gram, factors) = FixtureHessian(ckpt, 1, ActivationPoint.MixerOutputInput, cols, RandomChunks(4, 64, config.VocabSize, 3));
        using var _ = factors;
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        var w = WeightSlots.Of(model.Weights, tensor)!.Value.Read();
        var grid = new MatMulNBitsGrid(bits, blockSize);
        var rounded = CompensatedTensorRounding.Round(tensor, grid, w, factors, config, null)!;
        var (b, scales) = grid.Split(rounded.Bytes, rows, cols);
        var decoded = MatMulNBitsPacker.Dequantize(new MatMulNBitsWeight(rows, cols, bits, blockSize, b, scales, null));
        Assert.Equal(rounded.Dequantized, decoded);
        var plain = MatMulNBitsPacker.Dequantize(MatMulNBitsPacker.Quantize(w, rows, cols, bits, blockSize, symmetric: true));
        double gptq = OutputError(w, decoded, rows, cols, gram), nearest = OutputError(w, plain, rows, cols, gram);
        Assert.True(gptq < 0.9 * nearest, $"GPTQ {gptq:G4} vs round-to-nearest {nearest:G4}");
    }

    /// <summary>
    /// The Hessian summed in place as the chunks pass (meta rows added once with the chunk count as weight, float32
    /// products and sums): XᵀX of every recorded row to float32 precision, in the reversed order the factor
    /// reads, lower triangle; the same bits with the chunks on 1 and 3 threads; diag / rows is the mean square.
    /// </summary>
    [Fact]
    public void The_hessian_is_the_gram_matrix_of_every_row_and_the_same_bits_at_any_thread_count()
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA);
        var source = new CheckpointTensorSource(ckpt);
        var config = ckpt.Config;
        var chunks = RandomChunks(5, 40, config.VocabSize, 8);
        int n = (int)config.DInner;   // out_proj's input, layer 1
        double[] Sum(int threads, out long rowCount, out float[] meanSquares, RowsRecording? rows)
        {
            using var hessians = new HessianAccumulator((l, p) => l == 1 && p == ActivationPoint.MixerOutputInput, chunks.Length, config.NumMemoryTokens);
            using var activations = new CalibrationActivations(source, chunks, threads);
            foreach (var plan in config.Layers.Take(2))
            {
                var weights = HymbaWeights.LoadLayer(source, plan);
                if (rows is not null) activations.Probe(weights, rows);
                activations.Advance(weights, hessians);
                HymbaWeights.DisposeLayer(weights, ownsTensors: true);
            }
            rowCount = hessians.Rows(1, ActivationPoint.MixerOutputInput);
            meanSquares = hessians.MeanSquares(1, ActivationPoint.MixerOutputInput)!;
            using var sum = hessians.Take(1, ActivationPoint.MixerOutputInput)!;
            Assert.Null(hessians.Take(1, ActivationPoint.MixerOutputInput));
            Assert.Equal(ScalarType.Float32, sum.dtype);
            return [.. sum.data<float>().ToArray().Select(v => (double)v)];
        }
        var recorded = new RowsRecording(1, ActivationPoint.MixerOutputInput, chunks.Length);
        var one = Sum(1, out long rowCount, out var meanSquares, recorded);
        var three = Sum(3, out _, out _, null);
        Assert.Equal(one, three);
        Assert.Equal(chunks.Length * (40 + config.NumMemoryTokens), rowCount);
        var exact = recorded.Gram(n);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(exact[i * n + i] / rowCount, meanSquares[i], 1e-5 * Math.Max(1, exact[i * n + i] / rowCount));
            for (int j = 0; j <= i; j++)
            {
                double expected = exact[(n - 1 - i) * n + n - 1 - j], got = one[i * n + j];
                double scale = Math.Sqrt(exact[(n - 1 - i) * (n + 1)] * exact[(n - 1 - j) * (n + 1)]);   // |H_ij| <= sqrt(H_ii H_jj)
                Assert.True(Math.Abs(got - expected) <= 1e-5 * Math.Max(1e-9, scale), $"H[{i},{j}] (reversed): {got} vs {expected}");
            }
        }
    }

    /// <summary>Input columns that never see a non-zero value (and an all-zero Hessian) leave no NaN and still decode.</summary>
    [Theory]
    [InlineData("Q4_0")]
    [InlineData("IQ4_NL")]
    [InlineData("Q5_1")]
    public void Dead_input_columns_leave_no_nan(string typeName)
    {
        Assert.True(GgmlTypes.TryParse(typeName, out var type));
        const int rows = 24, cols = 96, samples = 300;
        var random = new Random(9);
        var w = Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var dead = new HashSet<int> { 0, 5, 17, 31, 32, 40, 41, 42, 43, 44, 45, 46, 47, 95 };
        var x = new double[samples * cols];
        for (int s = 0; s < samples; s++)
        {
            double common = random.NextDouble() * 2 - 1;
            for (int j = 0; j < cols; j++) x[s * cols + j] = dead.Contains(j) ? 0 : common + 0.3 * (random.NextDouble() * 2 - 1);
        }
        using var xt = torch.tensor(x, [samples, cols]);
        using var gram = xt.t().matmul(xt);
        foreach (var h in new[] { gram, torch.zeros(cols, cols, ScalarType.Float64) })
        {
            using var factor = Factor(h);
            Assert.All(factor.Upper.data<float>().ToArray(), v => Assert.True(float.IsFinite(v)));
            var working = (float[])w.Clone();
            var bytes = GptqRounding.Round(working, rows, cols, factor, BlockGrid.ForGgml(type)!, default);
            var decoded = TensorQuantizer.Dequantize(type, bytes, w.Length);
            Assert.Equal(working, decoded);
            Assert.All(decoded, v => Assert.True(float.IsFinite(v)));
            Assert.True(double.IsFinite(factor.Damping));
        }
        var g = gram.data<double>().ToArray();
        using var f = Factor(gram);
        var result = (float[])w.Clone();
        GptqRounding.Round(result, rows, cols, f, BlockGrid.ForGgml(type)!, default);
        Assert.True(OutputError(w, result, rows, cols, g) < OutputError(w, Plain(type, w, cols), rows, cols, g));
    }

    [Fact]
    public void Damping_grows_until_cholesky_succeeds()
    {
        using var h = torch.tensor(new double[] { 0.75, 2.25, 2.25, 0.75 }, [2, 2]);   // eigenvalues 3 and -1.5, mean(diag) 0.75
        using var factor = Factor(h);
        Assert.InRange(factor.Damping, 9.99, 10.01);                         // 1 %, 10 % and 100 % of mean(diag) leave it indefinite; 1000 % works
        var u = factor.Upper.data<float>().ToArray();
        Assert.All(u, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(0f, u[2]);                                              // upper triangular
    }

    /// <summary>
    /// A Hessian wider than several factor blocks (256) that is indefinite at the first damping (a 2 x 2 coupling
    /// larger than its diagonal, in the last blocks): each failed attempt is undone in place from the kept upper
    /// triangle and the saved diagonal blocks, and the factor of the attempt that succeeds is the inverse of H + λ·mean(diag H)·I.
    /// </summary>
    [Fact]
    public void A_failed_attempt_is_undone_in_place_and_the_retry_factors_the_damped_matrix()
    {
        const int n = 700;
        var random = new Random(5);
        using var x = torch.tensor(Enumerable.Range(0, 40 * n).Select(_ => random.NextDouble() * 2 - 1).ToArray(), [40, n]);
        using var h = x.t().matmul(x);
        h.diagonal().add_(1.0);
        double coupling = 3 * h[600, 600].item<double>();
        h[600, 601] = torch.tensor(coupling);
        h[601, 600] = torch.tensor(coupling);
        using var factor = Factor(h);
        Assert.True(factor.Damping > HessianFactor.InitialDamping, $"damping {factor.Damping}");
        double mean = h.diagonal().mean().item<double>();
        using var damped = h.clone();
        damped.diagonal().add_(factor.Damping * mean);
        using var u = factor.Upper.to(ScalarType.Float64);
        using var product = u.t().matmul(u).matmul(damped);
        using var error = product.sub(torch.eye(n, dtype: ScalarType.Float64)).abs().max();
        Assert.True(error.item<double>() < 1e-3, $"UᵀU·H deviates from I by {error.item<double>():G3}");
    }

    /// <summary>
    /// The factor of a Hessian wider than one of its fixed column blocks (256): the same bits on 1 and 3 worker
    /// threads, upper triangular, and UᵀU the inverse of the damped H.
    /// </summary>
    [Fact]
    public void The_factor_is_the_inverse_and_the_same_bits_at_any_thread_count()
    {
        const int cols = 600;
        var random = new Random(21);
        using var x = torch.tensor(Enumerable.Range(0, 400 * cols).Select(_ => random.NextDouble() * 2 - 1).ToArray(), [400, cols]);
        using var h = x.t().matmul(x);
        using var f1 = Factor(h, threads: 1);
        using var f3 = Factor(h, threads: 3);
        var u1 = f1.Upper.data<float>().ToArray();
        Assert.Equal(u1, f3.Upper.data<float>().ToArray());
        Assert.Equal(HessianFactor.InitialDamping, f1.Damping);
        double mean = h.diagonal().mean().item<double>();
        using var u = f1.Upper.to(ScalarType.Float64);
        using var damped = h.clone();
        damped.diagonal().add_(f1.Damping * mean);
        using var product = u.t().matmul(u).matmul(damped);
        using var error = product.sub(torch.eye(cols, dtype: ScalarType.Float64)).abs().max();
        Assert.True(error.item<double>() < 1e-3, $"UᵀU·H deviates from I by {error.item<double>():G3}");
        for (int r = 1; r < cols; r++) Assert.Equal(0f, u1[r * cols + r - 1]);   // upper triangular
    }

    /// <summary>
    /// The lazy-batch sweep against a plain column-by-column GPTQ written here in float64 (rank-one update after
    /// every column): the same levels but for a few values at rounding ties, and the same output error to 1 %.
    /// Rows span several tiles and columns several batches (one partial); the bytes are the same at 1 and 3 threads.
    /// </summary>
    [Fact]
    public void The_lazy_batch_sweep_matches_column_by_column_gptq_and_is_the_same_at_any_thread_count()
    {
        const int rows = 150, cols = 320;
        var random = new Random(4);
        var w = Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        using var x = torch.tensor(Enumerable.Range(0, 500 * cols).Select(_ => random.NextDouble()).ToArray(), [500, cols]);
        using var gram = x.t().matmul(x);
        using var factor = Factor(gram);
        var grid = BlockGrid.ForGgml(GgmlType.Q4_0)!;
        var one = (float[])w.Clone();
        var three = (float[])w.Clone();
        var bytesOne = GptqRounding.Round(one, rows, cols, factor, grid, default, threads: 1);
        Assert.Equal(bytesOne, GptqRounding.Round(three, rows, cols, factor, grid, default, threads: 3));

        // Reference: the same scale choice at each block's first column, every column's error pushed on at once.
        var u = factor.Upper.data<float>().ToArray();
        var reference = new double[rows * cols];
        var scales = new BlockScale[cols / 32];
        var block = new float[32];
        for (int r = 0; r < rows; r++)
        {
            var row = reference.AsSpan(r * cols, cols);
            for (int j = 0; j < cols; j++) row[j] = w[r * cols + j];
            for (int i = 0; i < cols; i++)
            {
                if (i % 32 == 0)
                {
                    for (int j = 0; j < 32; j++) block[j] = (float)row[i + j];
                    scales[i / 32] = grid.Choose(block, default);
                }
                float q = grid.Value(scales[i / 32], grid.Nearest(scales[i / 32], (float)row[i]));
                double error = (row[i] - q) / u[i * cols + i];
                row[i] = q;
                for (int j = i + 1; j < cols; j++) row[j] -= error * u[i * cols + j];
            }
        }
        int differing = Enumerable.Range(0, rows * cols).Count(i => one[i] != (float)reference[i]);
        Assert.True(differing < rows * cols / 100, $"{differing} of {rows * cols} values differ from column-by-column GPTQ");
        var g = gram.data<double>().ToArray();
        double lazy = OutputError(w, one, rows, cols, g), plain = OutputError(w, [.. reference.Select(v => (float)v)], rows, cols, g);
        Assert.True(Math.Abs(lazy - plain) < 0.01 * plain, $"output error {lazy:G6} vs {plain:G6}");
    }

    /// <summary>
    /// A GGUF written with the layer walk: ordinary blocks a GGUF reader decodes, the method in the metadata, the
    /// same bytes at 1 and 2 threads, and bytes that differ from plain rounding where GPTQ applies.
    /// </summary>
    [Fact]
    public void A_gptq_gguf_reads_back_and_is_the_same_at_any_thread_count()
    {
        string Write(int threads)
        {
            string path = _dir.File($"gptq-{threads}.gguf");
            using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA);
            var preset = QuantizationPreset.Find("q4_0")!;
            var plan = QuantizationPlan.Create(ckpt.Config, preset);
            using var walk = GptqLayerWalk.ForGgml(new CheckpointTensorSource(ckpt), RandomChunks(3, 48, ckpt.Config.VocabSize, 11), plan, null, threads);
            GgufExporter.Export(ckpt, path, new GgufExportOptions { Preset = preset, Plan = plan, Rounding = walk, Method = RoundingMethod.Gptq, Threads = threads });
            Assert.Equal(ckpt.Config.NumLayers, walk.Times.Layers);
            return path;
        }
        string a = Write(1), b = Write(2);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        string plainPath = _dir.File("plain.gguf");
        using (var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA))
            GgufExporter.Export(ckpt, plainPath, new GgufExportOptions { Preset = QuantizationPreset.Find("q4_0")! });
        using var gptq = GgufTensorSource.Open(a);
        using var plain = GgufTensorSource.Open(plainPath);
        Assert.Equal("gptq", gptq.File.Get("general.quantization.method").AsString);
        Assert.False(plain.File.TryGet("general.quantization.method", out _));
        Assert.True(gptq.File.TryGetTensor("blk.1.ffn_down.weight", out var info) && info.Type == GgmlType.Q4_0);
        Assert.True(plain.File.TryGetTensor("blk.1.ffn_down.weight", out var plainInfo));
        Assert.NotEqual(plain.File.Data(plainInfo).ToArray(), gptq.File.Data(info).ToArray());
        Assert.True(gptq.File.TryGetTensor("token_embd.weight", out var embedding));
        Assert.True(plain.File.TryGetTensor("token_embd.weight", out var plainEmbedding));
        Assert.Equal(plain.File.Data(plainEmbedding).ToArray(), gptq.File.Data(embedding).ToArray());   // the embedding is rounded plainly
        using var model = HymbaModel.Load(gptq);
        Assert.All(model.Forward([[1, 2, 3, 4, 5]]).Data, v => Assert.True(float.IsFinite(v)));
    }
}
