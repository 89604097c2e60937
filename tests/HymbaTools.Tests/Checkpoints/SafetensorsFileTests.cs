using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Checkpoints;

public class SafetensorsFileTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static InvalidCheckpointException OpenFails(string path)
    {
        var e = Assert.Throws<InvalidCheckpointException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path, e.Message);
        return e;
    }

    [Fact]
    public void Valid_file_opens_and_exposes_a_zero_copy_view()
    {
        string path = _dir.File("ok.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
            BitConverter.GetBytes(1.5f).Concat(new byte[20]).ToArray());
        using var file = SafetensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.True(file.TryGetTensor("w", out var w));
        Assert.Equal(new long[] { 2, 3 }, w.Shape);
        Assert.Equal(1.5f, w.ToFloat32Array()[0]);
    }

    [Fact]
    public void File_shorter_than_the_length_prefix_is_truncated()
    {
        string path = _dir.File("t.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("shorter than the 8-byte", OpenFails(path).Message);
    }

    [Fact]
    public void Header_length_larger_than_the_file_is_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{}", [], headerLength: 1000);
        var e = OpenFails(path);
        Assert.Equal("header", e.Field);
        Assert.Contains("larger than", e.Message);
    }

    [Fact]
    public void Absurd_header_length_is_refused_before_any_allocation()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{}", [], headerLength: ulong.MaxValue);
        Assert.Contains("exceeds the", OpenFails(path).Message);
    }

    [Fact]
    public void Header_that_is_not_json_is_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{not json at all", []);
        Assert.Contains("not valid JSON", OpenFails(path).Message);
    }

    [Fact]
    public void Header_that_is_not_an_object_is_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "[1,2,3]", []);
        Assert.Contains("expected an object", OpenFails(path).Message);
    }

    [Fact]
    public void Data_offsets_beyond_the_data_section_are_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", new byte[10]);
        var e = OpenFails(path);
        Assert.Equal("w", e.Field);
        Assert.Contains("> data section", e.Message);
    }

    [Fact]
    public void Overlapping_tensors_are_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path,
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", new byte[24]);
        var e = OpenFails(path);
        Assert.Equal("b", e.Field);
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void Offsets_that_do_not_match_shape_times_dtype_are_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", new byte[24]);
        var e = OpenFails(path);
        Assert.Equal("w", e.Field);
        Assert.Contains("needs 12", e.Message);
    }

    [Fact]
    public void Shape_whose_size_overflows_is_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", []);
        Assert.Contains("overflows", OpenFails(path).Message);
    }

    [Fact]
    public void Hole_in_the_data_section_is_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]);
        Assert.Contains("hole", OpenFails(path).Message);
    }

    [Fact]
    public void Unknown_dtype_is_refused_by_name()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{\"w\":{\"dtype\":\"Q4_WEIRD\",\"shape\":[1],\"data_offsets\":[0,1]}}", new byte[1]);
        var e = OpenFails(path);
        Assert.Contains("unknown dtype 'Q4_WEIRD'", e.Message);
        Assert.False(e.IsUnsupported);
    }

    [Fact]
    public void Recognised_but_unsupported_dtype_is_named()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{\"w\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", new byte[1]);
        var e = OpenFails(path);
        Assert.Contains("'F4' is not supported", e.Message);
        Assert.True(e.IsUnsupported);
    }

    [Fact]
    public void Duplicate_tensor_name_in_header_is_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path,
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]);
        Assert.Contains("appears twice", OpenFails(path).Message);
    }

    [Fact]
    public void Trailing_bytes_after_the_last_tensor_are_refused()
    {
        string path = _dir.File("t.safetensors");
        SafetensorsBuilder.WriteRaw(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[12]);
        Assert.Contains("trailing bytes", OpenFails(path).Message);
    }

    [Fact]
    public void Bf16_and_f16_are_upcast_exactly()
    {
        string path = _dir.File("h.safetensors");
        ushort bf = HymbaTools.Common.Numerics.BFloat16Bits.FromSingle(-2.75f);
        var half = BitConverter.GetBytes((Half)0.333f);
        SafetensorsBuilder.WriteRaw(path,
            "{\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[2,4]}}",
            BitConverter.GetBytes(bf).Concat(half).ToArray());
        using var file = SafetensorsFile.Open(path);
        Assert.True(file.TryGetTensor("a", out var a));
        Assert.True(file.TryGetTensor("b", out var b));
        Assert.Equal(-2.75f, a.ToFloat32Array()[0]);
        Assert.Equal((float)(Half)0.333f, b.ToFloat32Array()[0]);
    }
}
