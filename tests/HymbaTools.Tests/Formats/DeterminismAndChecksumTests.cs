using HymbaTools.Formats;
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
        // A child process: the thread count is process-wide (see ComputeThreads), and other tests run beside this one.
        Assert.Equal(0, HymbaTools.Cli.ChildProcess.Hymba(["quantize", Fixtures.TinyA, "--type", "q4_0", "--threads", "1", "-o", a]).ExitCode);
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
        Assert.Contains($"tensor {victim}: xxh3-128 ", bad.Stderr, StringComparison.Ordinal); // named as the digest it is, not "sha256"
        Assert.DoesNotContain("sha256", bad.Stderr, StringComparison.Ordinal);
        Assert.Single(bad.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>The digest is XXH3-128 in its canonical (big-endian) hex form, as `xxhsum -H2` prints it.</summary>
    [Fact]
    public void Tensor_digest_is_canonical_xxh3_128()
    {
        Assert.Equal("99aa06d3014798d86001c324468d497f", TensorDigest.Of([]));
        Assert.Equal(TensorDigest.HexLength, TensorDigest.Of("hymba"u8).Length);
    }

    /// <summary>Files written before 0.2 carry sha256 under general.tensor_sha256: still verified, and damage still named.</summary>
    [Fact]
    public void Legacy_sha256_tensor_checksums_still_verify()
    {
        var data = new[] { new byte[64], Enumerable.Range(0, 128).Select(i => (byte)i).ToArray() };
        string Sha(byte[] d) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(d));
        string path = _dir.File("legacy.gguf");
        var writer = new GgufWriter();
        writer.Add(GgufConstants.ArchitectureKey, GgufValue.Str("hymba"));
        writer.Add(GgufWriter.LegacyTensorChecksumsKey, GgufValue.Strings(data.Select(Sha)));
        for (int i = 0; i < data.Length; i++)
        {
            var bytes = data[i];
            writer.AddTensor(new GgufTensorEntry($"t{i}", [bytes.Length / 4], GgmlType.F32, s => s.Write(bytes)));
        }
        writer.Write(path);
        long at;
        using (var file = GgufFile.Open(path))
        {
            Assert.Empty(TensorChecksums.Verify(file)!);
            at = file.DataStart + file.Tensors[1].Offset + 5;
        }
        var raw = File.ReadAllBytes(path);
        raw[at] ^= 1;
        File.WriteAllBytes(path, raw);
        using var bad = GgufFile.Open(path);
        Assert.Equal("t1", Assert.Single(TensorChecksums.Verify(bad)!).Tensor);
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
