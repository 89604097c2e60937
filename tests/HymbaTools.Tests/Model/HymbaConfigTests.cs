using System.Text;
using System.Text.Json.Nodes;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Synthetic;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Model;

public class HymbaConfigTests
{
    private static HymbaConfig Parse(JsonObject json) => HymbaConfig.Parse(Encoding.UTF8.GetBytes(json.ToJsonString()), "config.json");

    private static JsonObject Fixture(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();

    [Fact]
    public void TinyA_plan_matches_its_config()
    {
        var c = HymbaConfig.Load(Path.Combine(Fixtures.TinyA, "config.json"));
        Assert.Equal(16, c.HeadDim);
        Assert.Equal(128, c.DInner);
        Assert.Equal(32, c.VHeadDim);
        Assert.Equal(4, c.DtRank);
        Assert.Equal([AttentionKind.Global, AttentionKind.Sliding, AttentionKind.Sliding, AttentionKind.Global], c.Layers.Select(l => l.Attention));
        Assert.Equal([0, 1, 1, 3], c.Layers.Select(l => l.KvSource));
        // in_proj: owner [Q 64 | K 32 | V 64 | x 128 | z 128] = 416 rows, consumer [Q | x | z] = 320
        Assert.Equal(new RowBlock(64, 32), c.Layers[1].InProj.K);
        Assert.Equal(new RowBlock(96, 64), c.Layers[1].InProj.V);
        Assert.Equal(new RowBlock(160, 128), c.Layers[1].InProj.X);
        Assert.Equal(416, c.Layers[1].InProj.Rows);
        Assert.Equal(new RowBlock(64, 128), c.Layers[2].InProj.X);
        Assert.Equal(320, c.Layers[2].InProj.Rows);
        Assert.Equal(10000 * Math.Pow(7, 16.0 / 14), c.RopeBase, 6);
    }

    [Fact]
    public void TinyB_has_a_three_layer_group_and_a_lone_sliding_layer()
    {
        var c = HymbaConfig.Load(Path.Combine(Fixtures.TinyB, "config.json"));
        Assert.Equal([0, 1, 1, 1, 4, 5], c.Layers.Select(l => l.KvSource));
        Assert.Equal(AttentionKind.Sliding, c.Layers[4].Attention);
        Assert.Equal(12, c.Layers[4].Window);
        Assert.False(c.TieWordEmbeddings);
    }

    [Fact]
    public void Hymba_1_5B_config_gives_the_published_parameter_count_and_cache_size()
    {
        var json = CheckpointPreset.Find("1.5b")!.ToConfigJson("bfloat16");
        var c = Parse(json);
        Assert.Equal(1_522_797_824, ModelFootprint.Of(c).ParameterCount);
        Assert.Equal(82_984_960, CacheSize.Compute(c, 8192).Total);
        Assert.Equal(8960, c.Layers[1].InProj.Rows);
        Assert.Equal(8000, c.Layers[2].InProj.Rows);
        Assert.Equal(17, c.KvOwners.Count());
        Assert.Equal(74534.83031811893, c.RopeBase, 6);
        // doc section 4.2: without KV sharing 116.16 MB, all global and no sharing 515.28 MB at 8192
        Assert.Equal(116.16, CacheSize.Compute(c, 8192, CacheSize.Variant.NoKvSharing).Total / 1e6, 2);
        Assert.Equal(515.28, CacheSize.Compute(c, 8192, CacheSize.Variant.NoSharingAllGlobal).Total / 1e6, 2);
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("num_key_value_heads")]
    [InlineData("num_memory_tokens")]
    [InlineData("mamba_d_state")]
    [InlineData("rms_norm_eps")]
    [InlineData("tie_word_embeddings")]
    [InlineData("mamba_inner_layernorms")]
    [InlineData("rope")]
    public void Missing_required_field_is_named(string field)
    {
        var json = Fixture(Fixtures.TinyA);
        json.Remove(field);
        var e = Assert.Throws<InvalidConfigException>(() => Parse(json));
        Assert.Equal("$." + field, e.Field);
        Assert.Contains("required field is missing", e.Message);
    }

    [Fact]
    public void Wrongly_typed_field_is_named_with_what_was_expected()
    {
        var json = Fixture(Fixtures.TinyA);
        json["num_attention_heads"] = "four";
        var e = Assert.Throws<InvalidConfigException>(() => Parse(json));
        Assert.Equal("$.num_attention_heads", e.Field);
        Assert.Contains("expected an integer", e.Message);
    }

    [Fact]
    public void Malformed_json_is_an_input_error()
    {
        var e = Assert.Throws<InvalidConfigException>(() => HymbaConfig.Parse(Encoding.UTF8.GetBytes("{\"hidden_size\": 64,"), "config.json"));
        Assert.Contains("not valid JSON", e.Message);
    }

    [Fact]
    public void Not_a_hymba_model_is_unsupported()
    {
        var json = Fixture(Fixtures.TinyA);
        json["model_type"] = "llama";
        var e = Assert.Throws<InvalidConfigException>(() => Parse(json));
        Assert.True(e.IsUnsupported);
    }

    [Theory]
    [InlineData("[[1, 9]]", "expected a layer index")]
    [InlineData("[[1, 2], [2, 3]]", "already in group")]
    [InlineData("[[2, 1]]", "comes before its producer")]
    [InlineData("[[1]]", "at least one consumer")]
    public void Invalid_kv_reuse_groups_are_refused(string groups, string message)
    {
        var json = Fixture(Fixtures.TinyA);
        json["kv_reuse_group"] = JsonNode.Parse(groups);
        var e = Assert.Throws<InvalidConfigException>(() => Parse(json));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Kv_reuse_every_i_layer_makes_each_layer_read_the_last_owner()
    {
        var json = Fixture(Fixtures.TinyA);
        json["kv_reuse_group"] = null;
        json["kv_reuse_every_i_layer"] = 2;
        var c = Parse(json);
        Assert.Equal([0, 0, 2, 2], c.Layers.Select(l => l.KvSource));
    }

    [Fact]
    public void Null_sliding_window_makes_every_layer_global()
    {
        var json = Fixture(Fixtures.TinyA);
        json["sliding_window"] = null;
        var c = Parse(json);
        Assert.All(c.Layers, l => Assert.Equal(AttentionKind.Global, l.Attention));
    }

    [Fact]
    public void Dt_rank_auto_is_ceil_of_hidden_over_16()
    {
        var json = Fixture(Fixtures.TinyB);
        json["mamba_dt_rank"] = "auto";
        Assert.Equal(6, Parse(json).DtRank);
    }
}
