using HymbaTools.Formats.Gguf;
using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Formats;

/// <summary>`quantize` reads a GGUF as llama.cpp's quantizer does: float tensors are quantized, tensors already in their target type copied, quantized ones requantized only when asked.</summary>
public class GgufInputTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static Dictionary<string, byte[]> TensorData(string path)
    {
        using var file = GgufFile.Open(path);
        return file.Tensors.ToDictionary(t => t.Name, t => file.Data(t).ToArray());
    }

    private static Dictionary<string, string> TokenizerKeys(string path)
    {
        using var file = GgufFile.Open(path);
        return file.Metadata.Where(kv => kv.Key.StartsWith("tokenizer.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value.ToString());
    }

    private string Quantize(string input, string type, string name, params string[] extra)
    {
        string output = _dir.File(name);
        var r = CliRunner.Run(["quantize", input, "--type", type, "-o", output, .. extra]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return output;
    }

    /// <summary>Checkpoint -> f32/bf16 GGUF -> quantized GGUF gives the very tensor bytes of quantizing the checkpoint directly.</summary>
    [Theory]
    [InlineData("f32", "q4_k_m")]
    [InlineData("bf16", "q8_0")]
    [InlineData("f16", "iq4_nl")]
    public void A_float_gguf_quantizes_to_the_same_tensors_as_its_checkpoint(string dtype, string preset)
    {
        string checkpoint = _dir.File("ckpt-" + dtype);
        Assert.Equal(0, CliRunner.Run("init", checkpoint, "--preset", "tiny", "--dtype", dtype).ExitCode);
        string intermediate = Quantize(checkpoint, dtype, "float.gguf");   // the float preset of the same name
        var direct = TensorData(Quantize(checkpoint, preset, "direct.gguf"));
        string viaGguf = Quantize(intermediate, preset, "via-gguf.gguf");
        var via = TensorData(viaGguf);
        Assert.Equal(direct.Keys.Order(), via.Keys.Order());
        foreach (var (name, bytes) in direct) Assert.True(bytes.AsSpan().SequenceEqual(via[name]), $"{name} differs");
        Assert.Equal(TokenizerKeys(intermediate), TokenizerKeys(viaGguf));
        Assert.Equal(0, CliRunner.Run("inspect", viaGguf, "--checksums").ExitCode);
    }

    [Fact]
    public void Tensors_already_in_the_target_type_are_copied_unchanged()
    {
        string q40 = Quantize(Fixtures.TinyA, "q4_0", "q4_0.gguf");
        var again = TensorData(Quantize(q40, "q4_0", "again.gguf"));
        foreach (var (name, bytes) in TensorData(q40)) Assert.True(bytes.AsSpan().SequenceEqual(again[name]), $"{name} differs");
    }

    [Fact]
    public void Quantized_input_is_requantized_only_with_allow_requantize()
    {
        string q40 = Quantize(Fixtures.TinyA, "q4_0", "q4_0.gguf");
        var refused = CliRunner.Run("quantize", q40, "--type", "q8_0", "-o", _dir.File("refused.gguf"));
        Assert.Equal(2, refused.ExitCode);
        Assert.StartsWith("error: --allow-requantize:", refused.FirstErrorLine, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.File("refused.gguf")));

        string output = _dir.File("requantized.gguf");
        var allowed = CliRunner.Run("quantize", q40, "--type", "q8_0", "-o", output, "--allow-requantize");
        Assert.Equal(0, allowed.ExitCode);
        Assert.Contains("warning: requantized", allowed.Stderr, StringComparison.Ordinal);
        using var file = GgufFile.Open(output);
        var listed = file.Get("general.quantization.requantized").Elements.Select(e => e.AsString).ToList();
        Assert.Contains("blk.0.attn_q.weight: Q4_0 -> Q8_0", listed);
        Assert.Equal([Path.GetFileName(q40)], file.Get("general.source.file_names").Elements.Select(e => e.AsString));
    }
}
