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
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyB);
        Assert.Equal(ckpt.Config.Layers.Select(l => l.KvSource), source.Config.Layers.Select(l => l.KvSource));
        Assert.Equal(ckpt.Config.Layers.Select(l => l.Attention), source.Config.Layers.Select(l => l.Attention));
        Assert.Equal(ckpt.Config.RopeBase, source.Config.RopeBase);
        using var model = HymbaModel.Load(source);
        var logits = model.Forward([[1, 2, 3, 4]]);
        Assert.All(logits.Data, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [InlineData("q8_0", 0.01)]
    [InlineData("q6_k", 0.01)]
    [InlineData("q4_0", 0.6)]
    public void Quantized_files_stay_close_to_the_reference(string preset, double maxMeanKl)
    {
        string path = Export(Fixtures.TinyB, preset);
        using var source = GgufTensorSource.Open(path);
        using var runner = new ReferenceRunner(HymbaModel.Load(source), path);
        var golden = GoldenData.Load(Fixtures.Golden(Fixtures.TinyB), runner.Config.VocabSize);
        var report = Verifier.AgainstGolden(runner, golden, 100);
        Assert.All(report.Cases, c => Assert.True(c.Comparison!.MeanKl < maxMeanKl, $"{preset} {c.Name}: mean KL {c.Comparison.MeanKl}"));
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
        var imatrix = ImportanceCollector.Collect(model, tokens, 64, 4, "random", null);
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
