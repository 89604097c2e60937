using HymbaTools.Formats.Gguf;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Formats;

/// <summary>Outputs are the same bytes whatever the thread count, and carry per-tensor checksums that `inspect --checksums` verifies.</summary>
public class DeterminismAndChecksumTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("q4_k_m")]
    [InlineData("q8_0")]
    public void Gguf_bytes_do_not_depend_on_the_thread_count(string preset)
    {
        byte[] Export(int threads)
        {
            string path = _dir.File($"{preset}-{threads}.gguf");
            using var checkpoint = HymbaCheckpoint.Open(Fixtures.TinyB);
            GgufExporter.Export(checkpoint, path, new GgufExportOptions { Preset = QuantizationPreset.Find(preset)!, Threads = threads });
            return File.ReadAllBytes(path);
        }
        var one = Export(1);
        Assert.True(one.AsSpan().SequenceEqual(Export(Math.Max(4, Environment.ProcessorCount))), "1 thread and several threads wrote different bytes");
    }

    [Fact]
    public void Cli_quantize_is_byte_identical_at_one_and_all_threads()
    {
        string a = _dir.File("a.gguf"), b = _dir.File("b.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q4_0", "--threads", "1", "-o", a).ExitCode);
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q4_0", "-o", b).ExitCode);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
    }

    [Fact]
    public void Gguf_checksums_verify_and_name_a_damaged_tensor()
    {
        string path = _dir.File("c.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q4_0", "-o", path).ExitCode);
        var ok = CliRunner.Run("inspect", path, "--checksums");
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        string victim;
        long at;
        using (var file = GgufFile.Open(path))
        {
            Assert.Equal(file.Tensors.Count, file.Get(GgufWriter.TensorChecksumsKey).Elements.Count);
            var tensor = file.Tensors[file.Tensors.Count / 2];
            victim = tensor.Name;
            at = file.DataStart + tensor.Offset + tensor.ByteLength / 2;
        }
        var bytes = File.ReadAllBytes(path);
        bytes[at] ^= 0x10;
        File.WriteAllBytes(path, bytes);
        var bad = CliRunner.Run("inspect", path, "--checksums");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains($"tensor {victim}:", bad.Stderr, StringComparison.Ordinal);
        Assert.Single(bad.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Onnx_checksums_verify_and_name_a_damaged_tensor_in_external_data()
    {
        string dir = _dir.File("onnx");
        Assert.Equal(0, CliRunner.Run("export", Fixtures.TinyA, "--type", "int8", "--external-data-threshold", "0", "-o", dir).ExitCode);
        Assert.Equal(0, CliRunner.Run("inspect", dir, "--checksums").ExitCode);
        string data = Path.Combine(dir, "model.onnx.data");
        var bytes = File.ReadAllBytes(data);
        bytes[bytes.Length - 10] ^= 0x01;
        File.WriteAllBytes(data, bytes);
        var bad = CliRunner.Run("inspect", dir, "--checksums");
        Assert.Equal(1, bad.ExitCode);
        Assert.StartsWith("check failed: tensor ", bad.FirstErrorLine, StringComparison.Ordinal);
    }
}
