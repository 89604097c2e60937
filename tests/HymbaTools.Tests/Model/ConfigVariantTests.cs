using HymbaTools.Runtime;
using System.Text.Json.Nodes;
using HymbaTools.Model;
using HymbaTools.Synthetic;
using HymbaTools.Tests.TestData;
using HymbaTools.Verification;

namespace HymbaTools.Tests.Model;

/// <summary>Config values the fixtures do not use still give a consistent model (self-checks pass, the catalog matches).</summary>
[Collection(LibTorchThreadCountGroup.Name)]
public class ConfigVariantTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    public static IEnumerable<object[]> Variants() =>
    [
        ["no-inner-norms", "{\"mamba_inner_layernorms\": false}"],
        ["no-meta-tokens", "{\"num_memory_tokens\": 0}"],
        ["no-sliding-window", "{\"sliding_window\": null}"],
        ["no-rope", "{\"rope\": false}"],
        ["default-rope", "{\"rope_type\": \"default\"}"],
        ["no-conv-bias", "{\"mamba_conv_bias\": false}"],
        ["every-second-layer-reuses", "{\"kv_reuse_group\": null, \"kv_reuse_every_i_layer\": 2}"],
        ["untied", "{\"tie_word_embeddings\": false}"],
    ];

    [Theory]
    [MemberData(nameof(Variants))]
    public void Variant_passes_the_self_checks(string name, string overrides)
    {
        var json = CheckpointPreset.Find("small")!.ToConfigJson("float32");
        foreach (var kv in JsonNode.Parse(overrides)!.AsObject()) json[kv.Key] = kv.Value?.DeepClone();
        string dir = Path.Combine(_dir.Path, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        var config = HymbaConfig.Load(Path.Combine(dir, "config.json"));
        // Write random weights for exactly the catalog of this config.
        var preset = CheckpointPreset.Find("small")!;
        string weights = Path.Combine(_dir.Path, name + "-weights");
        RandomCheckpointWriter.Write(weights, new RandomCheckpointOptions(preset, 3, HymbaTools.Checkpoints.SafetensorsDType.F32));
        using (var source = HymbaCheckpoint.Open(weights))
        {
            var entries = HymbaTensorCatalog.For(config).Select(t => new HymbaTools.Checkpoints.SafetensorsEntry(t.Name, HymbaTools.Checkpoints.SafetensorsDType.F32, t.Shape)).ToList();
            HymbaTools.Checkpoints.SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), entries, null, (e, s) =>
            {
                var values = source.Tensors.TryGet(e.Name, out var v) && v.Shape.SequenceEqual(e.Shape) ? v.ToFloat32Array() : Enumerable.Repeat(0.02f, (int)e.ByteLength / 4).ToArray();
                s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            });
        }
        using var ckpt = HymbaCheckpoint.Open(dir);
        using var runner = new ReferenceRunner(HymbaModel.Load(new CheckpointTensorSource(ckpt)), dir);
        var report = Verifier.SelfCheck(runner, 1e-4);
        Assert.True(report.Passed, report.ToText());
    }
}
