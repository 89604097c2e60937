using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>Every bad-input case of the checkpoint reader, through the CLI: exit 2, one line naming the file (and field), no stack trace.</summary>
public class BadCheckpointCliTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    public static IEnumerable<object[]> Cases() =>
    [
        ["truncated-prefix", "", null!],
        ["header-longer-than-file", "{}", (ulong)4096],
        ["absurd-header-length", "{}", ulong.MaxValue],
        ["header-not-json", "{\"w\": [1,2", null!],
        ["header-not-object", "\"hello\"", null!],
        ["offsets-out-of-range", "{\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", null!],
        ["offsets-overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", null!],
        ["offsets-mismatch-shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", null!],
        ["unknown-dtype", "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", null!],
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Corrupt_safetensors_gives_exit_2_naming_the_file(string name, string header, ulong? headerLength)
    {
        string ckpt = Path.Combine(_dir.Path, name);
        Directory.CreateDirectory(ckpt);
        File.Copy(Path.Combine(Fixtures.TinyA, "config.json"), Path.Combine(ckpt, "config.json"));
        string weights = Path.Combine(ckpt, "model.safetensors");
        if (name == "truncated-prefix") File.WriteAllBytes(weights, [1, 2, 3]);
        else SafetensorsBuilder.WriteRaw(weights, header, new byte[8], headerLength);
        var r = CliRunner.Run("inspect", ckpt);
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("error: " + weights, r.FirstErrorLine);
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Missing_shard_gives_exit_2_naming_the_shard()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyB);
        File.Delete(Path.Combine(ckpt, "model-00001-of-00002.safetensors"));
        var r = CliRunner.Run("verify", ckpt);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("model-00001-of-00002.safetensors: shard file is missing", r.FirstErrorLine);
    }

    [Fact]
    public void Missing_config_gives_exit_2()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyA);
        File.Delete(Path.Combine(ckpt, "config.json"));
        var r = CliRunner.Run("verify", ckpt);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("config.json", r.FirstErrorLine);
    }

    [Fact]
    public void Wrong_tensor_shape_gives_exit_2_listing_the_problems()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyA);
        File.Copy(Path.Combine(Fixtures.TinyB, "config.json"), Path.Combine(ckpt, "config.json"), overwrite: true);
        var r = CliRunner.Run("inspect", ckpt);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("problems", r.FirstErrorLine);
        Assert.Contains("expected", r.FirstErrorLine);
    }
}
