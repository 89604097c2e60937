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
}
