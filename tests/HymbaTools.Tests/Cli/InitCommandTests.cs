using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

public class InitCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("f32", 1)]
    [InlineData("bf16", 3)]
    [InlineData("f16", 2)]
    public void Init_writes_a_checkpoint_that_inspect_and_verify_accept(string dtype, int shards)
    {
        string dir = Path.Combine(_dir.Path, $"m-{dtype}");
        var init = CliRunner.Run("init", dir, "--preset", "tiny", "--dtype", dtype, "--shards", shards.ToString(), "--seed", "7");
        Assert.Equal(0, init.ExitCode);
        Assert.Equal(shards > 1, File.Exists(Path.Combine(dir, "model.safetensors.index.json")));
        Assert.Equal(0, CliRunner.Run("inspect", dir).ExitCode);
        var verify = CliRunner.Run("verify", dir);
        Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);
    }

    [Fact]
    public void Same_seed_gives_byte_identical_files_and_another_seed_does_not()
    {
        string a = Path.Combine(_dir.Path, "a"), b = Path.Combine(_dir.Path, "b"), c = Path.Combine(_dir.Path, "c");
        CliRunner.Run("init", a, "--preset", "small", "--seed", "5");
        CliRunner.Run("init", b, "--preset", "small", "--seed", "5");
        CliRunner.Run("init", c, "--preset", "small", "--seed", "6");
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "model.safetensors")), File.ReadAllBytes(Path.Combine(b, "model.safetensors")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "config.json")), File.ReadAllBytes(Path.Combine(b, "config.json")));
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(a, "model.safetensors")), File.ReadAllBytes(Path.Combine(c, "model.safetensors")));
    }

    [Fact]
    public void Config_has_the_key_set_of_the_real_checkpoint()
    {
        string dir = Path.Combine(_dir.Path, "k");
        CliRunner.Run("init", dir, "--preset", "tiny", "--config-only");
        var written = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject().Select(kv => kv.Key).Order();
        var fixture = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.TinyA, "config.json")))!.AsObject().Select(kv => kv.Key).Order();
        Assert.Equal(fixture, written);
    }

    [Fact]
    public void Tiny_preset_config_is_spelled_like_the_fixture()
    {
        // The tiny preset has tiny-a's shapes: the files must be identical but for torch_dtype.
        string dir = Path.Combine(_dir.Path, "t");
        CliRunner.Run("init", dir, "--preset", "tiny", "--dtype", "f32", "--config-only");
        Assert.Equal(File.ReadAllText(Path.Combine(Fixtures.TinyA, "config.json")).TrimEnd(), File.ReadAllText(Path.Combine(dir, "config.json")).TrimEnd());
    }

    [Fact]
    public void Unknown_preset_gives_exit_2()
    {
        var r = CliRunner.Run("init", Path.Combine(_dir.Path, "x"), "--preset", "huge");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--preset", r.FirstErrorLine);
    }

    /// <summary>--layers lays layers out as Hymba-1.5B: at 32 layers exactly the 1.5b preset (the real config's lists).</summary>
    [Fact]
    public void Layer_layout_at_32_layers_is_hymba_1_5b()
    {
        var real = HymbaTools.Synthetic.CheckpointPreset.Find("1.5b")!;
        var (globals, groups) = HymbaTools.Synthetic.CheckpointPreset.HymbaLayerLayout(32);
        Assert.Equal(real.GlobalLayers, globals);
        Assert.Equal(real.KvReuseGroups.Select(g => string.Join(",", g)), groups.Select(g => string.Join(",", g)));
        var (globals64, groups64) = HymbaTools.Synthetic.CheckpointPreset.HymbaLayerLayout(64);
        Assert.Equal([0, 31, 63], globals64);
        Assert.Equal(61, groups64.Sum(g => g.Length));   // every sliding layer is in exactly one group
        Assert.Equal(Enumerable.Range(0, 64).Except(globals64), groups64.SelectMany(g => g).Order());
    }

    [Fact]
    public void Init_with_layers_writes_a_checkpoint_that_validates()
    {
        string dir = _dir.File("deep");
        Assert.Equal(0, CliRunner.Run("init", dir, "--preset", "tiny", "--layers", "9").ExitCode);
        var r = CliRunner.Run("inspect", dir, "--json");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("\"num_hidden_layers\": 9", File.ReadAllText(Path.Combine(dir, "config.json")), StringComparison.Ordinal);
        Assert.Equal(2, CliRunner.Run("init", _dir.File("none"), "--preset", "tiny", "--layers", "0").ExitCode);
    }
}
