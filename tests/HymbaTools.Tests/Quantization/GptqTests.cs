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

    private static long[][] RandomChunks(int chunks, int length, int vocab, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, chunks).Select(_ => Enumerable.Range(0, length).Select(_ => (long)random.Next(vocab)).ToArray())];
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

    public static IEnumerable<object[]> Cases() =>
        from type in new[] { "Q4_0", "IQ4_NL", "Q4_1", "Q5_0", "Q5_1", "Q8_0" }
        from tensor in new[] { "blk.1.ssm_in.weight", "blk.1.ffn_down.weight", "blk.2.mixer_out.weight" }
        select new object[] { type, tensor };

    /// <summary>
    /// A fixture layer (tiny-a, layer 1 and 2) with the Hessian of its real inputs over 4 x 64 tokens: GPTQ's
    /// blocks give a smaller output error ‖WX − QX‖ than plain rounding into the same type, decode with the
    /// existing dequantizer to exactly the weights the sweep assumed, and hold no NaN.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Gptq_reduces_the_output_error_of_a_fixture_layer_against_plain_rounding(string typeName, string tensorName)
    {
        Assert.True(GgmlTypes.TryParse(typeName, out var type));
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA);
        var config = ckpt.Config;
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        var statistics = new ActivationStatistics { GramLayers = new HashSet<int> { 1, 2 } };
        model.Forward(RandomChunks(4, 64, config.VocabSize, 3), new ForwardOptions { Statistics = statistics });
        var tensor = HymbaStorageLayout.For(config).Single(t => t.Name == tensorName);
        var slot = WeightSlots.Of(model.Weights, tensor)!.Value;
        var w = slot.Read();
        int rows = (int)tensor.Rows, cols = (int)tensor.Columns;
        var point = ImportanceMatrix.PointOf(tensor.Role, config.TieWordEmbeddings)!.Value;
        var gram = statistics.Gram(tensor.Layer, point)!.data<double>().ToArray();

        var rounded = CompensatedTensorRounding.Round(tensor, type, w, new FactorCache(statistics), config, null)!;
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
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        var statistics = new ActivationStatistics { GramLayers = new HashSet<int> { 1 } };
        model.Forward(RandomChunks(4, 64, config.VocabSize, 3), new ForwardOptions { Statistics = statistics });
        var tensor = HymbaStorageLayout.For(config).Single(t => t.Name == "blk.1.mixer_out.weight");   // 128 columns: whole blocks of 32 and 64
        var w = WeightSlots.Of(model.Weights, tensor)!.Value.Read();
        int rows = (int)tensor.Rows, cols = (int)tensor.Columns;
        var gram = statistics.Gram(1, ActivationPoint.MixerOutputInput)!.data<double>().ToArray();
        var grid = new MatMulNBitsGrid(bits, blockSize);
        var rounded = CompensatedTensorRounding.Round(tensor, grid, w, new FactorCache(statistics), config, null)!;
        var (b, scales) = grid.Split(rounded.Bytes, rows, cols);
        var decoded = HymbaTools.Quantization.Onnx.MatMulNBitsPacker.Dequantize(new HymbaTools.Quantization.Onnx.MatMulNBitsWeight(rows, cols, bits, blockSize, b, scales, null));
        Assert.Equal(rounded.Dequantized, decoded);
        var plain = HymbaTools.Quantization.Onnx.MatMulNBitsPacker.Dequantize(HymbaTools.Quantization.Onnx.MatMulNBitsPacker.Quantize(w, rows, cols, bits, blockSize, symmetric: true));
        double gptq = OutputError(w, decoded, rows, cols, gram), nearest = OutputError(w, plain, rows, cols, gram);
        Assert.True(gptq < 0.9 * nearest, $"GPTQ {gptq:G4} vs round-to-nearest {nearest:G4}");
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
            var (factor, damping) = HessianFactor.Compute(h);
            Assert.All(factor, v => Assert.True(float.IsFinite(v)));
            var working = (float[])w.Clone();
            var bytes = GptqRounding.Round(working, rows, cols, factor, BlockGrid.ForGgml(type)!, default);
            var decoded = TensorQuantizer.Dequantize(type, bytes, w.Length);
            Assert.Equal(working, decoded);
            Assert.All(decoded, v => Assert.True(float.IsFinite(v)));
            Assert.True(double.IsFinite(damping));
        }
        var g = gram.data<double>().ToArray();
        var (f, _) = HessianFactor.Compute(gram);
        var result = (float[])w.Clone();
        GptqRounding.Round(result, rows, cols, f, BlockGrid.ForGgml(type)!, default);
        Assert.True(OutputError(w, result, rows, cols, g) < OutputError(w, Plain(type, w, cols), rows, cols, g));
    }

    [Fact]
    public void Damping_grows_until_cholesky_succeeds()
    {
        using var h = torch.tensor(new double[] { 0.75, 2.25, 2.25, 0.75 }, [2, 2]);   // eigenvalues 3 and -1.5, mean(diag) 0.75
        var (factor, damping) = HessianFactor.Compute(h);
        Assert.InRange(damping, 9.99, 10.01);                                // 1 %, 10 % and 100 % of mean(diag) leave it indefinite; 1000 % works
        Assert.All(factor, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(0f, factor[2]);                                         // upper triangular
    }

    /// <summary>
    /// Gram matrices and inverse-Hessian factors wider than one of their fixed column blocks (256): the same bits
    /// on 1 and 3 worker threads, XᵀX to float64 precision, exactly symmetric, and UᵀU the inverse of the damped H.
    /// </summary>
    [Fact]
    public void Gram_matrices_and_factors_are_the_same_bits_at_any_thread_count()
    {
        const int cols = 600;
        var random = new Random(21);
        var parts = new[] { 130, 70, 200 }.Select(rows =>
            torch.tensor(Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(), [rows, cols])).ToList();
        using var one = GramMatrix.Compute(parts, 1);
        using var three = GramMatrix.Compute(parts, 3);
        var g = one.data<double>().ToArray();
        Assert.Equal(g, three.data<double>().ToArray());
        using (var x = torch.cat([.. parts], 0).to(ScalarType.Float64))
        using (var expected = x.t().matmul(x))
        {
            var e = expected.data<double>().ToArray();
            for (int i = 0; i < g.Length; i++) Assert.True(Math.Abs(g[i] - e[i]) <= 1e-9 * Math.Max(1, Math.Abs(e[i])), $"entry {i}: {g[i]} vs {e[i]}");
        }
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < i; j++) Assert.Equal(g[i * cols + j], g[j * cols + i]);

        var (f1, damping) = HessianFactor.Compute(one, threads: 1);
        var (f3, _) = HessianFactor.Compute(one, threads: 3);
        Assert.Equal(f1, f3);
        Assert.Equal(HessianFactor.InitialDamping, damping);
        double mean = Enumerable.Range(0, cols).Average(i => g[i * cols + i]);
        using var u = torch.tensor(f1, [cols, cols]).to(ScalarType.Float64);
        using var damped = one.clone();
        damped.diagonal().add_(damping * mean);
        using var product = u.t().matmul(u).matmul(damped);
        using var error = product.sub(torch.eye(cols, dtype: ScalarType.Float64)).abs().max();
        Assert.True(error.item<double>() < 1e-3, $"UᵀU·H deviates from I by {error.item<double>():G3}");
        Assert.Equal(0f, f1[1 * cols + 0]);   // upper triangular
        foreach (var p in parts) p.Dispose();
    }

    [Fact]
    public void The_sweep_gives_the_same_bytes_at_any_thread_count()
    {
        const int rows = 37, cols = 128;
        var random = new Random(4);
        var w = Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var x = Enumerable.Range(0, 200 * cols).Select(_ => random.NextDouble()).ToArray();
        using var xt = torch.tensor(x, [200, cols]);
        using var gram = xt.t().matmul(xt);
        var (factor, _) = HessianFactor.Compute(gram);
        var one = GptqRounding.Round((float[])w.Clone(), rows, cols, factor, BlockGrid.ForGgml(GgmlType.IQ4_NL)!, default, maxParallelism: 1);
        var three = GptqRounding.Round((float[])w.Clone(), rows, cols, factor, BlockGrid.ForGgml(GgmlType.IQ4_NL)!, default, maxParallelism: 3);
        Assert.Equal(one, three);
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
