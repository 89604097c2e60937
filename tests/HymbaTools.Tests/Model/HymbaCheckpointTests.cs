using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Model;

public class HymbaCheckpointTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Fixtures_validate_and_tied_lm_head_falls_back_to_the_embedding()
    {
        using var a = HymbaCheckpoint.Open(Fixtures.TinyA);
        Assert.Empty(a.Warnings);
        Assert.Equal(310_928, ModelFootprint.Of(a.Config, a.Tensors).ParameterCount);
        Assert.Same(a.Get(HymbaTensorCatalog.EmbedTokens), a.Get(HymbaTensorCatalog.LmHead));
        using var b = HymbaCheckpoint.Open(Fixtures.TinyB);
        Assert.Equal(1_145_412, ModelFootprint.Of(b.Config, b.Tensors).ParameterCount);
        Assert.NotSame(b.Get(HymbaTensorCatalog.EmbedTokens), b.Get(HymbaTensorCatalog.LmHead));
    }

    /// <summary>Rewrites tiny-a's weights with an edit of the entry list (drop, reshape, add tensors).</summary>
    private string RewriteTinyA(Func<List<(SafetensorsEntry Entry, byte[] Data)>, List<(SafetensorsEntry Entry, byte[] Data)>> edit)
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyA);
        var list = new List<(SafetensorsEntry, byte[])>();
        using (var f = SafetensorsFile.Open(Path.Combine(Fixtures.TinyA, "model.safetensors")))
            foreach (var t in f.Tensors) list.Add((new SafetensorsEntry(t.Name, t.DType, t.Shape.ToArray()), t.Bytes.ToArray()));
        var edited = edit(list);
        var data = edited.ToDictionary(e => e.Entry.Name, e => e.Data);
        SafetensorsWriter.Write(Path.Combine(ckpt, "model.safetensors"), edited.Select(e => e.Entry).ToList(), null, (e, s) => s.Write(data[e.Name]));
        return ckpt;
    }

    [Fact]
    public void All_problems_are_reported_together()
    {
        string ckpt = RewriteTinyA(list =>
        {
            list.RemoveAll(e => e.Entry.Name == "model.layers.0.mamba.D.0");
            int i = list.FindIndex(e => e.Entry.Name == "model.layers.2.mamba.in_proj.weight");
            list[i] = (list[i].Entry with { Shape = [416, 64] }, new byte[416 * 64 * 4]);
            list.Add((new SafetensorsEntry("model.layers.0.self_attn.q_proj.weight", SafetensorsDType.F32, [4]), new byte[16]));
            return list;
        });
        var e = Assert.Throws<InvalidCheckpointException>(() => HymbaCheckpoint.Open(ckpt).Dispose());
        Assert.Contains("3 problems", e.Message);
        Assert.Contains("model.layers.0.mamba.D.0: missing", e.Message);
        Assert.Contains("model.layers.2.mamba.in_proj.weight: shape [416, 64], expected [320, 64]", e.Message);
        Assert.Contains("KV consumer of layer 1", e.Message);
        Assert.Contains("model.layers.0.self_attn.q_proj.weight: unexpected tensor", e.Message);
    }

    [Fact]
    public void Integer_weight_dtype_is_refused_by_name()
    {
        string ckpt = RewriteTinyA(list =>
        {
            int i = list.FindIndex(e => e.Entry.Name == "model.final_layernorm.weight");
            list[i] = (list[i].Entry with { DType = SafetensorsDType.I32 }, list[i].Data);
            return list;
        });
        var e = Assert.Throws<InvalidCheckpointException>(() => HymbaCheckpoint.Open(ckpt).Dispose());
        Assert.Equal("model.final_layernorm.weight", e.Field);
        Assert.Contains("dtype I32 is not supported", e.Message);
    }

    private string TinyAWithNaN() => RewriteTinyA(list =>
    {
        int i = list.FindIndex(e => e.Entry.Name == "model.layers.1.mamba.D.0");
        var data = list[i].Data.ToArray();
        BitConverter.GetBytes(float.NaN).CopyTo(data, 8);
        BitConverter.GetBytes(float.PositiveInfinity).CopyTo(data, 12);
        list[i] = (list[i].Entry, data);
        return list;
    });

    [Fact]
    public void NaN_in_a_weight_is_a_warning_by_default()
    {
        using var ckpt = HymbaCheckpoint.Open(TinyAWithNaN());
        var warning = Assert.Single(ckpt.Warnings);
        Assert.Contains("model.layers.1.mamba.D.0: 2 NaN/Inf", warning);
    }

    [Fact]
    public void NaN_in_a_weight_is_an_error_when_strict()
    {
        var e = Assert.Throws<InvalidCheckpointException>(() => HymbaCheckpoint.Open(TinyAWithNaN(), new CheckpointReadOptions { Strict = true }).Dispose());
        Assert.Equal("model.layers.1.mamba.D.0", e.Field);
    }

    [Fact]
    public void Missing_config_is_an_input_error()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyA);
        File.Delete(Path.Combine(ckpt, "config.json"));
        var e = Assert.Throws<InvalidConfigException>(() => HymbaCheckpoint.Open(ckpt).Dispose());
        Assert.EndsWith("config.json", e.FilePath);
    }

    [Fact]
    public void Config_only_directory_opens_without_weights()
    {
        string ckpt = Path.Combine(_dir.Path, "cfg");
        Directory.CreateDirectory(ckpt);
        File.Copy(Path.Combine(Fixtures.TinyA, "config.json"), Path.Combine(ckpt, "config.json"));
        using var c = HymbaCheckpoint.Open(ckpt);
        Assert.False(c.HasWeights);
        Assert.Equal(310_928, ModelFootprint.Of(c.Config, c.Tensors).ParameterCount);
    }
}
