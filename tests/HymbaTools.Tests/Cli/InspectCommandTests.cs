using System.Text.Json;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

public class InspectCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Human_output_has_config_layers_parameters_dtypes_and_cache()
    {
        var r = CliRunner.Run("inspect", Fixtures.TinyB);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("query heads / KV heads", r.Stdout);
        Assert.Contains("consumer of 1", r.Stdout);
        Assert.Contains("producer for 2,3", r.Stdout);
        Assert.Contains("Parameters: 1,145,412", r.Stdout);
        Assert.Contains("BF16", r.Stdout);
        Assert.Contains("without KV sharing", r.Stdout);
        Assert.Contains("16-bit cache", r.Stdout);
    }

    [Fact]
    public void Json_output_has_the_documented_keys()
    {
        var r = CliRunner.Run("inspect", Fixtures.TinyA, "--json", "--seq-len", "5", "--seq-len", "100");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal("hymba", root.GetProperty("model_type").GetString());
        Assert.Equal(4, root.GetProperty("num_layers").GetInt32());
        Assert.Equal(310_928, root.GetProperty("parameter_count").GetInt64());
        var layers = root.GetProperty("layers");
        Assert.Equal("sliding", layers[2].GetProperty("attention").GetString());
        Assert.Equal(1, layers[2].GetProperty("kv_source").GetInt32());
        Assert.Equal(3, layers[3].GetProperty("kv_source").GetInt32());
        // tiny-a at S=5: per token K/V 2*(16+32)*2 B = 192; owners: 0 (global) 8+5, 1 (sliding) 8+min(5,8), 3 (global) 8+5 -> 39 tokens;
        // states: 4 layers * 128 * (8 + 4) * 2 B = 12,288.
        Assert.Equal(39 * 192 + 12_288, root.GetProperty("cache_bytes").GetProperty("5").GetInt64());
        // S=100: sliding owner holds 8+8
        Assert.Equal((108 + 16 + 108) * 192 + 12_288, root.GetProperty("cache_bytes").GetProperty("100").GetInt64());
    }

    [Fact]
    public void Config_only_1_5B_gives_the_paper_numbers()
    {
        string dir = Path.Combine(_dir.Path, "h15");
        Assert.Equal(0, CliRunner.Run("init", dir, "--preset", "1.5b", "--config-only").ExitCode);
        var r = CliRunner.Run("inspect", dir, "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(1_522_797_824, doc.RootElement.GetProperty("parameter_count").GetInt64());
        Assert.Equal(82_984_960, doc.RootElement.GetProperty("cache_bytes").GetProperty("8192").GetInt64());
        Assert.False(doc.RootElement.GetProperty("has_weights").GetBoolean());
    }

    [Fact]
    public void Truncated_weights_give_exit_2_and_a_one_line_error_naming_the_file()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyA);
        string weights = Path.Combine(ckpt, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
        var r = CliRunner.Run("inspect", ckpt);
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("error: " + weights, r.FirstErrorLine);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void Malformed_config_gives_exit_2_naming_config_json()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyA);
        File.WriteAllText(Path.Combine(ckpt, "config.json"), "{ \"model_type\": \"hymba\", ");
        var r = CliRunner.Run("inspect", ckpt);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("config.json", r.FirstErrorLine);
    }

    [Fact]
    public void Missing_config_field_gives_exit_2_naming_the_field()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyA);
        string path = Path.Combine(ckpt, "config.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"num_memory_tokens\": 8,", ""));
        var r = CliRunner.Run("inspect", ckpt);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("$.num_memory_tokens: required field is missing", r.FirstErrorLine);
    }

    [Fact]
    public void Shard_path_traversal_gives_exit_2()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyB);
        string index = Path.Combine(ckpt, "model.safetensors.index.json");
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"model.memory_tokens\": \"model-00001-of-00002.safetensors\"", "\"model.memory_tokens\": \"../x.safetensors\""));
        var r = CliRunner.Run("inspect", ckpt);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("model.memory_tokens", r.FirstErrorLine);
    }

    [Fact]
    public void Nonexistent_directory_gives_exit_2()
    {
        var r = CliRunner.Run("inspect", Path.Combine(_dir.Path, "nope"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("no such file or directory", r.FirstErrorLine);
    }

    [Fact]
    public void NaN_weight_warns_and_strict_fails()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyA);
        string weights = Path.Combine(ckpt, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        BitConverter.GetBytes(float.NaN).CopyTo(bytes, bytes.Length - 4); // last tensor in name order
        File.WriteAllBytes(weights, bytes);
        var warn = CliRunner.Run("inspect", ckpt);
        Assert.Equal(0, warn.ExitCode);
        Assert.Contains("warning:", warn.Stderr);
        var strict = CliRunner.Run("inspect", ckpt, "--strict");
        Assert.Equal(2, strict.ExitCode);
        Assert.Contains("NaN/Inf", strict.FirstErrorLine);
    }

    /// <summary>
    /// quantize counts NaN/Inf while converting rows instead of scanning first: it must report exactly what the
    /// reader's scan reports, also for a tensor split into several stored tensors (in_proj row blocks) and for the
    /// embedding of a tied model.
    /// </summary>
    [Fact]
    public void Quantize_reports_the_same_non_finite_values_as_the_scan()
    {
        string ckpt = _dir.CopyOf(Fixtures.TinyA);
        string weights = Path.Combine(ckpt, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        using (var file = HymbaTools.Checkpoints.SafetensorsFile.Open(weights))
        {
            void Plant(string name, int element, float value)
            {
                Assert.True(file.TryGetTensor(name, out var t), name);
                BitConverter.GetBytes(value).CopyTo(bytes, t.DataOffset + 4L * element);
            }
            Plant("model.embed_tokens.weight", 3, float.NaN);
            Plant("model.embed_tokens.weight", 700, float.NegativeInfinity);
            var inProj = file.Tensors.First(t => t.Name.EndsWith("mamba.in_proj.weight", StringComparison.Ordinal)).Name;
            Plant(inProj, 0, float.PositiveInfinity);                                  // first row block
            Plant(inProj, (int)(file.Tensors.First(t => t.Name == inProj).ElementCount - 1), float.NaN);   // last row block
        }
        File.WriteAllBytes(weights, bytes);
        var scan = CliRunner.Run("inspect", ckpt);
        var quantize = CliRunner.Run("quantize", ckpt, "--type", "q8_0", "-o", _dir.File("nan.gguf"));
        Assert.Equal(0, quantize.ExitCode);
        static List<string> Warnings(string stderr) => stderr.Split('\n').Where(l => l.StartsWith("warning:", StringComparison.Ordinal)).ToList();
        var expected = Warnings(scan.Stderr);
        Assert.Equal(2, expected.Count);
        Assert.Contains(expected, w => w.Contains("model.embed_tokens.weight: 2 NaN/Inf", StringComparison.Ordinal));
        Assert.Equal(expected, Warnings(quantize.Stderr));
    }
}
