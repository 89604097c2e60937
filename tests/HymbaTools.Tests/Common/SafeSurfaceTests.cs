using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Formats.Gguf;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;
using TorchSharp;

namespace HymbaTools.Tests.Common;

/// <summary>The public readers cannot be used to read outside their mapping, and a failed write leaves nothing behind.</summary>
public class SafeSurfaceTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Views_of_a_disposed_safetensors_file_throw_and_dispose_is_idempotent()
    {
        var file = SafetensorsFile.Open(Path.Combine(Fixtures.TinyA, "model.safetensors"));
        var view = file.Tensors[0];
        Assert.True(view.Bytes.Length > 0);
        file.Dispose();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => view.Bytes.Length);
        Assert.Throws<ObjectDisposedException>(() => view.ToFloat32Array());
    }

    [Fact]
    public void Gguf_data_needs_the_files_own_tensor_info_and_an_open_file()
    {
        string path = _dir.File("a.gguf");
        using (var checkpoint = HymbaCheckpoint.Open(Fixtures.TinyA))
            GgufExporter.Export(checkpoint, path, new GgufExportOptions { Preset = QuantizationPreset.Find("q8_0")!, HashSources = false });
        var file = GgufFile.Open(path);
        var info = file.Tensors[0];
        Assert.Equal(info.ByteLength, file.Data(info).Length);
        var forged = info with { Offset = file.Length * 4 };
        Assert.Throws<ArgumentException>(() => file.Data(forged).Length);
        file.Dispose();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.Data(info).Length);
    }

    [Fact]
    public void The_scan_kernel_checks_every_shape_before_writing()
    {
        using var scope = torch.NewDisposeScope();
        long b = 1, c = 4, t = 3, n = 2;
        var u = torch.zeros(b, c, t);
        var a = torch.zeros(c, n);
        var bm = torch.zeros(b, t, n);
        var state = torch.zeros(b, c, n);
        Assert.Throws<ArgumentException>(() => SelectiveScan.Run(u, u, a, bm, bm, torch.zeros(c + 1), u, state));
        Assert.Throws<ArgumentException>(() => SelectiveScan.Run(u, u, a, bm, bm, torch.zeros(c), u, torch.zeros(b, c, n + 1)));
        Assert.Throws<ArgumentException>(() => SelectiveScan.Run(u, u, torch.zeros(c - 1, n), bm, bm, torch.zeros(c), u, state));
        Assert.Equal([b, c, t], SelectiveScan.Run(u, u, a, bm, bm, torch.zeros(c), u, state).shape);
    }

    [Fact]
    public void A_write_that_fails_midway_leaves_neither_the_file_nor_a_temporary()
    {
        string target = _dir.File("out.bin");
        File.WriteAllText(target, "previous");
        Assert.Throws<IOException>(() => AtomicFile.Write(target, stream =>
        {
            stream.Write(new byte[1 << 20]);
            throw new IOException("No space left on device");
        }));
        Assert.Equal("previous", File.ReadAllText(target));
        Assert.Empty(Directory.GetFiles(_dir.Path, ".out.bin.*"));
    }

    [Fact]
    public void A_destination_that_cannot_be_written_is_refused_before_the_work()
    {
        var r = CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", "/proc/hymba-test.gguf");
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("error: --output: /proc is not writable", r.FirstErrorLine, StringComparison.Ordinal);
    }
}
