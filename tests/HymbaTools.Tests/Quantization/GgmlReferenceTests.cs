using System.Runtime.InteropServices;
using HymbaTools.Quantization;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Tests.Quantization;

/// <summary>Our codecs against the bytes ggml's reference quantizers wrote for the same rows (see ggml-reference/README.md).</summary>
public class GgmlReferenceTests
{
    private const int RowLength = 512, Rows = 48;
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Quantization", "ggml-reference");

    private static float[] Read(string file) => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(Dir, file))).ToArray();

    /// <summary>The reference bytes are the ones ggml wrote: every file listed (by a name relative to the folder) hashes as recorded.</summary>
    [Fact]
    public void Reference_files_match_their_recorded_sha256()
    {
        var lines = File.ReadAllLines(Path.Combine(Dir, "SHA256SUMS")).Where(l => l.Length > 0).ToList();
        Assert.Equal(20, lines.Count); // 9 types x 2 modes + rows + importance
        foreach (var line in lines)
        {
            var parts = line.Split("  ", 2);
            Assert.False(parts[1].Contains('/'), $"{parts[1]}: SHA256SUMS must name files relative to its folder");
            Assert.Equal(parts[0], Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(Dir, parts[1])))));
        }
    }

    public static IEnumerable<object[]> Cases() =>
        from type in new[] { GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.IQ4_NL }
        from importance in new[] { false, true }
        select new object[] { type.ToString(), importance };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bytes_equal_ggml_reference(string typeName, bool withImportance)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        var rows = Read("rows.f32");
        var importance = withImportance ? Read("importance.f32") : null;
        var expected = File.ReadAllBytes(Path.Combine(Dir, $"{typeName}{(withImportance ? ".imatrix" : "")}.bin"));
        var actual = TensorQuantizer.Quantize(type, rows, RowLength, importance);
        Assert.Equal(expected.Length, actual.Length);
        var format = BlockFormatRegistry.Get(type);
        int blockBytes = format.BlockBytes;
        var bad = Enumerable.Range(0, expected.Length / blockBytes)
            .Where(b => !expected.AsSpan(b * blockBytes, blockBytes).SequenceEqual(actual.AsSpan(b * blockBytes, blockBytes))).ToList();
        Assert.True(bad.Count == 0,
            $"{typeName}{(withImportance ? " with importance" : "")}: {bad.Count} of {expected.Length / blockBytes} blocks differ; first block {bad.FirstOrDefault()} " +
            $"(row {bad.FirstOrDefault() * format.BlockSize / RowLength}): expected {Convert.ToHexString(expected, bad.FirstOrDefault() * blockBytes, blockBytes)} " +
            $"got {Convert.ToHexString(actual, bad.FirstOrDefault() * blockBytes, blockBytes)}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Quantization_is_independent_of_thread_count(string typeName, bool withImportance)
    {
        var type = Enum.Parse<GgmlType>(typeName);
        var rows = Read("rows.f32");
        var importance = withImportance ? Read("importance.f32") : null;
        using var one = new MemoryStream();
        TensorQuantizer.Quantize(type, Rows, RowLength, (first, count, dst) => rows.AsSpan((int)first * RowLength, count * RowLength).CopyTo(dst), importance, one, maxParallelism: 1);
        Assert.Equal(TensorQuantizer.Quantize(type, rows, RowLength, importance), one.ToArray());
    }
}
