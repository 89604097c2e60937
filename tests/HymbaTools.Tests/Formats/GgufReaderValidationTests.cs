using System.Text;
using HymbaTools.Formats.Gguf;
using HymbaTools.Quantization;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Formats;

/// <summary>Crafted GGUF files (built in code) that a validating reader must refuse with a clear error, and valid neighbours it must accept.</summary>
public class GgufReaderValidationTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    /// <summary>A small valid file: two metadata keys and two F32 tensors.</summary>
    private byte[] ValidFile()
    {
        var w = new GgufWriter();
        w.Add("general.architecture", GgufValue.Str("hymba"));
        w.Add("test.values", GgufValue.Int32s([1, 2, 3]));
        w.AddTensor(new GgufTensorEntry("a", [4, 2], GgmlType.F32, s => s.Write(new byte[32])));
        w.AddTensor(new GgufTensorEntry("b", [32], GgmlType.Q8_0, s => s.Write(new byte[34])));
        string path = _dir.File("valid.gguf");
        w.Write(path);
        return File.ReadAllBytes(path);
    }

    private InvalidGgufException Fails(byte[] bytes, string name = "bad.gguf")
    {
        string path = _dir.File(name);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidGgufException>(() => GgufFile.Open(path).Dispose());
        Assert.Equal(path, e.FilePath);
        return e;
    }

    private static int IndexOf(byte[] haystack, string ascii) => Encoding.ASCII.GetString(haystack).IndexOf(ascii, StringComparison.Ordinal);

    [Fact]
    public void Valid_file_is_read_completely()
    {
        string path = _dir.File("ok.gguf");
        File.WriteAllBytes(path, ValidFile());
        using var f = GgufFile.Open(path);
        Assert.Equal(2, f.Tensors.Count);
        Assert.Equal([1, 2, 3], f.Get("test.values").Elements.Select(e => (int)e.AsInteger));
        Assert.Equal(new long[] { 2, 4 }, f.Tensors[0].Shape);
    }

    [Fact]
    public void Truncated_file_is_refused()
    {
        var bytes = ValidFile();
        Assert.Contains("past the end", Fails(bytes[..(bytes.Length - 40)]).Message);
        Assert.Contains("truncated", Fails(bytes[..(bytes.Length - 10)], "pad.gguf").Message); // the last tensor's padding is part of the file
        Assert.Contains("shorter than a GGUF header", Fails(bytes[..10]).Message);
        Assert.Contains("cannot fit", Fails(bytes[..40], "head.gguf").Message);
    }

    [Fact]
    public void Bad_magic_and_version_are_refused()
    {
        var bytes = ValidFile();
        bytes[0] = (byte)'X';
        Assert.Equal("magic", Fails(bytes).Field);
        bytes = ValidFile();
        BitConverter.GetBytes(2u).CopyTo(bytes, 4);
        Assert.Equal("version", Fails(bytes).Field);
    }

    [Fact]
    public void Huge_counts_are_refused_before_allocating()
    {
        var bytes = ValidFile();
        BitConverter.GetBytes(ulong.MaxValue).CopyTo(bytes, 8);
        Assert.Equal("tensor_count", Fails(bytes).Field);
        bytes = ValidFile();
        BitConverter.GetBytes(1UL << 40).CopyTo(bytes, 16);
        Assert.Equal("metadata_kv_count", Fails(bytes).Field);
    }

    [Fact]
    public void Huge_string_length_is_refused()
    {
        var bytes = ValidFile();
        BitConverter.GetBytes(ulong.MaxValue - 3).CopyTo(bytes, 24); // length of the first key
        Assert.Contains("exceeds the cap", Fails(bytes).Message);
    }

    [Fact]
    public void Array_count_larger_than_the_file_is_refused()
    {
        var bytes = ValidFile();
        int at = IndexOf(bytes, "test.values") + "test.values".Length + 4 + 4; // key, value type, element type
        BitConverter.GetBytes(1UL << 30).CopyTo(bytes, at);
        Assert.Contains("cannot fit", Fails(bytes).Message);
    }

    [Fact]
    public void Misaligned_and_non_consecutive_offsets_are_refused()
    {
        var bytes = ValidFile();
        int at = IndexOf(bytes, "\u0001\0\0\0\0\0\0\0b") + 9 + 4 + 8 + 4; // tensor "b": name, n_dims, ne[0], type -> offset
        BitConverter.GetBytes(33UL).CopyTo(bytes, at);
        Assert.Contains("not a multiple of the alignment", Fails(bytes).Message);
        BitConverter.GetBytes(64UL).CopyTo(bytes, at);
        Assert.Contains("consecutive", Fails(bytes, "b2.gguf").Message);
    }

    [Fact]
    public void Unknown_type_zero_dims_and_bad_bool_are_refused()
    {
        var bytes = ValidFile();
        int typeAt = IndexOf(bytes, "\u0001\0\0\0\0\0\0\0b") + 9 + 4 + 8;
        BitConverter.GetBytes(99u).CopyTo(bytes, typeAt);
        Assert.Contains("unknown ggml type 99", Fails(bytes).Message);
        bytes = ValidFile();
        BitConverter.GetBytes(0UL).CopyTo(bytes, typeAt - 8);
        Assert.Contains("dimension 0 is 0", Fails(bytes, "z.gguf").Message);
        bytes = ValidFile();
        BitConverter.GetBytes(7u).CopyTo(bytes, typeAt - 12); // n_dims
        Assert.Contains("dimensions", Fails(bytes, "d.gguf").Message);
    }

    [Fact]
    public void Row_not_a_whole_block_is_refused()
    {
        var bytes = ValidFile();
        int at = IndexOf(bytes, "\u0001\0\0\0\0\0\0\0b") + 9 + 4;
        BitConverter.GetBytes(33UL).CopyTo(bytes, at); // Q8_0 with ne[0] = 33
        Assert.Contains("not a multiple of the Q8_0 block size", Fails(bytes).Message);
    }

    [Fact]
    public void Duplicate_key_is_refused_by_reader_and_writer()
    {
        var w = new GgufWriter();
        w.Add("test.aa", GgufValue.U8(1)).Add("test.ab", GgufValue.U8(2));
        string path = _dir.File("dup-src.gguf");
        w.Write(path);
        var bytes = File.ReadAllBytes(path);
        Encoding.ASCII.GetBytes("test.aa").CopyTo(bytes, IndexOf(bytes, "test.ab")); // same length: only the key changes
        Assert.Contains("duplicate metadata key", Fails(bytes).Message);
        Assert.Throws<InvalidOperationException>(() => new GgufWriter().Add("k", GgufValue.U8(1)).Add("k", GgufValue.U8(2)));
    }

    [Fact]
    public void Duplicate_tensor_name_is_refused()
    {
        var w = new GgufWriter();
        w.AddTensor(new GgufTensorEntry("t1", [4], GgmlType.F32, s => s.Write(new byte[16])));
        w.AddTensor(new GgufTensorEntry("t2", [4], GgmlType.F32, s => s.Write(new byte[16])));
        string path = _dir.File("dupt-src.gguf");
        w.Write(path);
        var bytes = File.ReadAllBytes(path);
        bytes[IndexOf(bytes, "t2") + 1] = (byte)'1';
        Assert.Contains("duplicate tensor name", Fails(bytes).Message);
    }

    [Fact]
    public void Name_longer_than_ggml_allows_is_refused_by_the_writer() =>
        Assert.Throws<ArgumentException>(() => new GgufWriter().AddTensor(new GgufTensorEntry(new string('x', 64), [1], GgmlType.F32, _ => { })));

    [Fact]
    public void Checkpoint_commands_report_a_corrupt_gguf_with_exit_2()
    {
        var bytes = ValidFile();
        string path = _dir.File("cut.gguf");
        File.WriteAllBytes(path, bytes[..(bytes.Length - 10)]);
        var r = Cli.CliRunner.Run("inspect", path);
        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("error: " + path, r.FirstErrorLine);
    }
}
