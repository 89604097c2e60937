using System.Text.Json.Nodes;
using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Checkpoints;

public class ShardedCheckpointTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static string IndexPath(string checkpoint) => Path.Combine(checkpoint, SafetensorsIndex.FileName);

    private static void EditIndex(string checkpoint, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(File.ReadAllText(IndexPath(checkpoint)))!.AsObject();
        edit(node["weight_map"]!.AsObject());
        File.WriteAllText(IndexPath(checkpoint), node.ToJsonString());
    }

    [Fact]
    public void Sharded_fixture_loads_every_tensor_from_its_shard()
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyB);
        Assert.Equal(WeightLayout.Sharded, ckpt.Files.Layout);
        Assert.Equal(2, ckpt.Tensors.Files.Count);
        Assert.Equal(118, ckpt.Tensors.Count);
    }

    [Theory]
    [InlineData("../model-00001-of-00002.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("sub/model.safetensors")]
    public void Shard_name_with_a_path_component_is_refused(string shard)
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyB);
        EditIndex(ckpt, map => map["model.memory_tokens"] = shard);
        var e = Assert.Throws<InvalidCheckpointException>(() => HymbaCheckpoint.Open(ckpt).Dispose());
        Assert.Equal("model.memory_tokens", e.Field);
        Assert.Contains("not a plain file name", e.Message);
        Assert.EndsWith(SafetensorsIndex.FileName, e.FilePath);
    }

    [Fact]
    public void Missing_shard_is_named()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyB);
        File.Delete(Path.Combine(ckpt, "model-00002-of-00002.safetensors"));
        var e = Assert.Throws<InvalidCheckpointException>(() => HymbaCheckpoint.Open(ckpt).Dispose());
        Assert.Equal("model-00002-of-00002.safetensors", e.Field);
        Assert.Contains("shard file is missing", e.Message);
    }

    [Fact]
    public void Tensor_stored_in_two_shards_is_refused()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyB);
        // Rewrite shard 2 so that it also holds a tensor that shard 1 holds.
        string shard2 = Path.Combine(ckpt, "model-00002-of-00002.safetensors");
        var entries = new List<SafetensorsEntry>();
        var data = new Dictionary<string, byte[]>();
        using (var f1 = SafetensorsFile.Open(Path.Combine(Fixtures.TinyB, "model-00001-of-00002.safetensors")))
        using (var f2 = SafetensorsFile.Open(Path.Combine(Fixtures.TinyB, "model-00002-of-00002.safetensors")))
        {
            foreach (var t in f2.Tensors.Append(f1.Tensors.First(t => t.Name == "model.memory_tokens")))
            {
                entries.Add(new SafetensorsEntry(t.Name, t.DType, t.Shape.ToArray()));
                data[t.Name] = t.Bytes.ToArray();
            }
        }
        SafetensorsWriter.Write(shard2, entries, null, (e, s) => s.Write(data[e.Name]));
        var e = Assert.Throws<InvalidCheckpointException>(() => HymbaCheckpoint.Open(ckpt).Dispose());
        Assert.Equal("model.memory_tokens", e.Field);
        Assert.Contains("two shards", e.Message);
        var cli = HymbaTools.Tests.Cli.CliRunner.Run("inspect", ckpt);
        Assert.Equal(2, cli.ExitCode);
        Assert.Contains("model.memory_tokens: tensor is stored in two shards", cli.FirstErrorLine);
    }

    [Fact]
    public void Tensor_listed_twice_in_the_index_is_refused()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyB);
        string text = File.ReadAllText(IndexPath(ckpt));
        text = text.Replace("\"model.memory_tokens\": \"model-00001-of-00002.safetensors\"",
            "\"model.memory_tokens\": \"model-00001-of-00002.safetensors\", \"model.memory_tokens\": \"model-00002-of-00002.safetensors\"");
        File.WriteAllText(IndexPath(ckpt), text);
        var e = Assert.Throws<InvalidCheckpointException>(() => HymbaCheckpoint.Open(ckpt).Dispose());
        Assert.Contains("listed twice", e.Message);
    }

    [Fact]
    public void Index_entry_without_tensor_in_its_shard_is_reported()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyB);
        EditIndex(ckpt, map => map["model.layers.9.extra"] = "model-00001-of-00002.safetensors");
        var e = Assert.Throws<InvalidCheckpointException>(() => HymbaCheckpoint.Open(ckpt).Dispose());
        Assert.Equal("model.layers.9.extra", e.Field);
    }
}
