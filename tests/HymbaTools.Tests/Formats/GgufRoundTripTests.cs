using HymbaTools.Runtime;
using HymbaTools.Formats.Gguf;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Tests.TestData;
using HymbaTools.Verification;

namespace HymbaTools.Tests.Formats;

public class GgufRoundTripTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private string Export(string fixture, string preset, ImportanceMatrix? importance = null)
    {
        string path = _dir.File($"{Path.GetFileName(fixture)}-{preset}{(importance is null ? "" : "-imatrix")}.gguf");
        using var ckpt = HymbaCheckpoint.Open(fixture);
        GgufExporter.Export(ckpt, path, new GgufExportOptions { Preset = QuantizationPreset.Find(preset)!, Importance = importance });
        return path;
    }

    [Theory]
    [InlineData("tiny-a")]
    [InlineData("tiny-b")]
    public void F32_gguf_reproduces_the_huggingface_forward_bit_for_bit(string fixture)
    {
        string dir = Fixtures.Path_(fixture);
        string path = Export(dir, "f32");
        using var ckpt = HymbaCheckpoint.Open(dir);
        using var hf = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        using var source = GgufTensorSource.Open(path);
        using var gguf = HymbaModel.Load(source);
        long[][] ids = [[3, 17, 99, 4, 250, 7, 1, 0, 42, 42, 11, 8, 300, 5]];
        Assert.Equal(hf.Forward(ids).Data, gguf.Forward(ids).Data);
    }

    [Fact]
    public void Bf16_checkpoint_in_bf16_gguf_is_lossless()
    {
        string path = Export(Fixtures.TinyB, "bf16");
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyB);
        using var hf = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        using var source = GgufTensorSource.Open(path);
        using var gguf = HymbaModel.Load(source);
        long[][] ids = [[5, 6, 7, 8, 9, 1000, 3]];
        Assert.Equal(hf.Forward(ids).Data, gguf.Forward(ids).Data);
    }

    public static IEnumerable<object[]> Presets() => QuantizationPreset.All.Select(p => new object[] { p.Name });

    [Theory]
    [MemberData(nameof(Presets))]
    public void Every_preset_writes_and_reads_back_with_complete_metadata(string preset)
    {
        string path = Export(Fixtures.TinyB, preset);
        using var source = GgufTensorSource.Open(path);
        var f = source.File;
        Assert.Equal("hymba", f.Get("general.architecture").AsString);
        foreach (string key in HymbaGgufSchema.AllKeys) Assert.True(f.TryGet(key, out _), $"missing {key}");
        foreach (string key in new[] { "general.name", "general.file_type", "general.tool_version", "general.quantization.preset",
                     "general.quantization.tensor_types", "general.source.file_names", "general.source.file_sha256", "general.alignment" })
            Assert.True(f.TryGet(key, out _), $"missing {key}");
        Assert.Equal(4, f.Get("general.source.file_sha256").Elements.Count); // config + 2 shards + index
        // The source digests are computed beside the quantizer and patched in afterwards: they must be the files' own.
        var names = f.Get("general.source.file_names").Elements.Select(e => e.AsString).ToList();
        var digests = f.Get("general.source.file_sha256").Elements.Select(e => e.AsString).ToList();
        for (int i = 0; i < names.Count; i++)
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(Fixtures.TinyB, names[i])))), digests[i]);
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyB);
        Assert.Equal(ckpt.Config.Layers.Select(l => l.KvSource), source.Config.Layers.Select(l => l.KvSource));
        Assert.Equal(ckpt.Config.Layers.Select(l => l.Attention), source.Config.Layers.Select(l => l.Attention));
        Assert.Equal(ckpt.Config.RopeBase, source.Config.RopeBase);
        using var model = HymbaModel.Load(source);
        var logits = model.Forward([[1, 2, 3, 4]]);
        Assert.All(logits.Data, v => Assert.True(float.IsFinite(v)));
    }

    /// <summary>
    /// Against the official logits of the random-weight fixture, which 4 bits move a lot: bounds are 1.5x the measured
    /// worst case (q8_0 1.9e-3 / 0.32, q6_k 2.5e-3 / 0.39, q4_0 0.53 / 5.0). The exactness test below is the one that
    /// catches a wrong codec or a swapped tensor at any bit width.
    /// </summary>
    [Theory]
    [InlineData("q8_0", 3e-3, 0.5)]
    [InlineData("q6_k", 4e-3, 0.6)]
    [InlineData("q4_0", 0.8, 7.5)]
    public void Quantized_files_stay_close_to_the_reference(string preset, double maxMeanKl, double maxAbs)
    {
        string path = Export(Fixtures.TinyB, preset);
        using var source = GgufTensorSource.Open(path);
        using var runner = new ReferenceRunner(HymbaModel.Load(source), path);
        var golden = GoldenData.Load(Fixtures.Golden(Fixtures.TinyB), runner.Config.VocabSize);
        var report = Verifier.AgainstGolden(runner, golden, 100);
        Assert.All(report.Cases, c => Assert.True(c.Comparison!.MeanKl < maxMeanKl && c.Comparison.MaxAbsDiff < maxAbs,
            $"{preset} {c.Name}: mean KL {c.Comparison.MeanKl}, max abs {c.Comparison.MaxAbsDiff}"));
    }

    /// <summary>
    /// A GGUF file runs exactly the model that its quantized weights describe: the reference forward over the
    /// checkpoint's tensors passed through the same quantize/dequantize, tensor by tensor and row block by row block,
    /// gives the same logits. A wrong codec, a row block at the wrong offset or two swapped tensors break this at
    /// any bit width.
    /// </summary>
    [Theory]
    [InlineData("q4_0")]
    [InlineData("q4_k_m")]
    [InlineData("q8_0")]
    [InlineData("iq4_nl_m")]
    public void Gguf_forward_equals_the_reference_on_the_same_quantized_weights(string preset)
    {
        string path = Export(Fixtures.TinyB, preset);
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyB);
        var plan = QuantizationPlan.Create(ckpt.Config, QuantizationPreset.Find(preset)!);
        using var expected = HymbaModel.Load(new RoundTrippedSource(new CheckpointTensorSource(ckpt), plan));
        using var source = GgufTensorSource.Open(path);
        using var gguf = HymbaModel.Load(source);
        long[][] ids = [[5, 6, 7, 8, 9, 1000, 3, 42, 17, 250, 11, 4, 8, 300, 2, 77, 19]];
        var cmp = LogitComparison.Compare(expected.Forward(ids).Data, gguf.Forward(ids).Data, ckpt.Config.VocabSize);
        Assert.True(cmp.MaxAbsDiff <= 1e-5, $"{preset}: max abs diff {cmp.MaxAbsDiff:E3} against the reference on round-tripped weights");
    }

    /// <summary>A checkpoint whose tensors read back as the quantization plan stores them (quantized, then dequantized).</summary>
    private sealed class RoundTrippedSource(IHymbaTensorSource inner, QuantizationPlan plan) : IHymbaTensorSource
    {
        public HymbaConfig Config => inner.Config;
        public bool Contains(string name) => inner.Contains(name);
        public IReadOnlyList<long> ShapeOf(string name) => inner.ShapeOf(name);

        public void CopyToFloat32(string name, Span<float> destination)
        {
            inner.CopyToFloat32(name, destination);
            foreach (var p in plan.Tensors.Where(p => p.Tensor.SourceName == name))
            {
                int cols = (int)p.Tensor.Columns;
                var region = destination.Slice((int)((p.Tensor.SourceRows?.Start ?? 0) * cols), (int)p.Tensor.ElementCount);
                var bytes = TensorQuantizer.Quantize(p.Type, region, cols);
                TensorQuantizer.Dequantize(p.Type, bytes, region.Length).CopyTo(region);
            }
        }
    }

    [Fact]
    public void Same_input_and_options_give_byte_identical_files()
    {
        string a = Export(Fixtures.TinyB, "q4_k_m");
        byte[] first = File.ReadAllBytes(a);
        File.Delete(a);
        Assert.Equal(first, File.ReadAllBytes(Export(Fixtures.TinyB, "q4_k_m")));
    }

    [Fact]
    public void Tensor_offsets_are_consecutive_and_aligned()
    {
        using var f = GgufFile.Open(Export(Fixtures.TinyA, "q5_1"));
        long expected = 0;
        foreach (var t in f.Tensors)
        {
            Assert.Equal(expected, t.Offset);
            expected = GgufConstants.Pad(t.Offset + t.ByteLength, f.Alignment);
        }
        Assert.Equal(0, f.DataStart % f.Alignment);
        Assert.Equal(f.Length, f.DataStart + expected);
    }

    [Fact]
    public void Shared_kv_is_stored_once_per_group()
    {
        using var f = GgufFile.Open(Export(Fixtures.TinyB, "f16"));
        var withK = f.Tensors.Where(t => t.Name.EndsWith("attn_k.weight", StringComparison.Ordinal)).Select(t => t.Name).ToList();
        Assert.Equal(["blk.0.attn_k.weight", "blk.1.attn_k.weight", "blk.4.attn_k.weight", "blk.5.attn_k.weight"], withK);
        Assert.Equal([0, 1, 1, 1, 4, 5], f.Get(HymbaGgufSchema.KvSource).Elements.Select(e => (int)e.AsInteger));
    }

    [Fact]
    public void Importance_changes_the_quantized_bytes_and_the_file_still_loads()
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyB);
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        var rng = new Random(1);
        var tokens = Enumerable.Range(0, 256).Select(_ => (long)rng.Next(1024)).ToArray();
        var imatrix = HymbaTools.Quantization.Calibration.ImportanceCollector.Collect(model, tokens, 64, 4, "random", null);
        Assert.Contains("blk.0.attn_q.weight", imatrix.Entries.Keys);
        Assert.Equal(96, imatrix.Entries["blk.0.attn_q.weight"].Length);
        Assert.Equal(192, imatrix.Entries["blk.0.mixer_out.weight"].Length);
        string saved = _dir.File("m.imatrix.safetensors");
        imatrix.Save(saved);
        var loaded = ImportanceMatrix.Load(saved);
        Assert.Equal(imatrix.Entries["blk.3.ffn_down.weight"], loaded.Entries["blk.3.ffn_down.weight"]);
        string plain = Export(Fixtures.TinyB, "q4_0"), weighted = Export(Fixtures.TinyB, "q4_0", loaded);
        Assert.NotEqual(File.ReadAllBytes(plain), File.ReadAllBytes(weighted));
        using var source = GgufTensorSource.Open(weighted);
        Assert.Equal(4, (int)source.File.Get("quantize.imatrix.chunks_count").AsInteger);
    }
}
