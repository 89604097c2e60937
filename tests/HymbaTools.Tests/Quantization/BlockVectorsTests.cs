using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Tests.Quantization;

/// <summary>
/// The vector block kernels against the scalar ggml port they replace, block by block: ordinary blocks must
/// take the vector path and give the same bytes; blocks the vectors decline (NaN, infinity, denormal scales,
/// zero extremes of Q4_1/Q5_1) go to the scalar code, so whole rows stay identical either way.
/// </summary>
public class BlockVectorsTests
{
    private delegate bool VectorKernel(ReadOnlySpan<float> x, Span<byte> y);
    private delegate void ScalarKernel(ReadOnlySpan<float> x, Span<byte> y);

    private static readonly (string Name, int Bytes, VectorKernel Vector, ScalarKernel Scalar)[] Kernels =
    [
        ("Q8_0", 34, BlockVectors.TryQuantizeQ8_0, Q8_0Format.QuantizeBlockReference),
        ("Q4_0", 18, (x, y) => BlockVectors.TryQuantizeSymmetric(x, y, 16), Q4_0Format.QuantizeBlockReference),
        ("Q5_0", 22, (x, y) => BlockVectors.TryQuantizeSymmetric(x, y, 32), Q5_0Format.QuantizeBlockReference),
        ("Q4_1", 20, (x, y) => BlockVectors.TryQuantizeAsymmetric(x, y, 16), Q4_1Format.QuantizeBlockReference),
        ("Q5_1", 24, (x, y) => BlockVectors.TryQuantizeAsymmetric(x, y, 32), Q5_1Format.QuantizeBlockReference),
    ];

    /// <summary>Blocks that stress rounding: halves exactly at the rounding points, ties for the largest magnitude, tiny and huge scales.</summary>
    private static IEnumerable<float[]> OrdinaryBlocks()
    {
        var random = new Random(1234);
        for (int i = 0; i < 4000; i++)
        {
            var x = new float[32];
            double scale = Math.Pow(10, random.Next(-30, 30));
            for (int j = 0; j < 32; j++) x[j] = (float)((random.NextDouble() * 2 - 1) * scale);
            switch (i % 5)
            {
                case 1: // values on the 1/2 grid of the eventual step: ties in every rounding
                    for (int j = 0; j < 32; j++) x[j] = (float)(Math.Round(x[j] / scale * 254) / 2 * scale);
                    break;
                case 2: // the largest magnitude twice, with both signs: the first must win
                    x[5] = (float)scale; x[20] = (float)-scale;
                    if (i % 2 == 0) (x[5], x[20]) = (x[20], x[5]);
                    break;
                case 3: // small integers, as in already-quantized weights
                    for (int j = 0; j < 32; j++) x[j] = random.Next(-8, 8) + 0.5f * random.Next(0, 2);
                    break;
            }
            for (int j = 0; j < 32; j++) if (x[j] == 0) x[j] = 1e-3f; // zero extremes are the fallback cases below
            yield return x;
        }
    }

    [Fact]
    public void Vector_blocks_equal_the_scalar_reference()
    {
        Assert.True(BlockVectors.IsAccelerated, "this machine has 256-bit vectors; the test must exercise them");
        foreach (var (name, bytes, vector, scalar) in Kernels)
        {
            int index = 0;
            foreach (var x in OrdinaryBlocks())
            {
                var expected = new byte[bytes];
                var actual = new byte[bytes];
                scalar(x, expected);
                Assert.True(vector(x, actual), $"{name}: block {index} of ordinary values fell back to scalar code");
                Assert.True(expected.AsSpan().SequenceEqual(actual),
                    $"{name}: block {index} differs: expected {Convert.ToHexString(expected)} got {Convert.ToHexString(actual)} for [{string.Join(", ", x.Select(v => v.ToString("R")))}]");
                index++;
            }
        }
    }

    [Theory]
    [InlineData(0x7fc00000u)]   // NaN
    [InlineData(0x7f800000u)]   // +infinity
    [InlineData(0xff800000u)]   // -infinity
    [InlineData(0x000002cau)]   // a denormal (1e-42): 1/d overflows
    [InlineData(0x00000000u)]   // zeros: Q4_1/Q5_1 have a zero extreme
    [InlineData(0x80000000u)]   // negative zeros
    public void Blocks_the_vectors_decline_still_encode_as_the_reference(uint specialBits)
    {
        float special = BitConverter.UInt32BitsToSingle(specialBits);
        foreach (var (name, bytes, _, scalar) in Kernels)
        {
            var format = BlockFormatRegistry.Get(Enum.Parse<HymbaTools.Quantization.GgmlType>(name));
            var row = new float[64];
            for (int j = 0; j < 64; j++) row[j] = float.IsFinite(special) ? special * (j % 3 - 1) : (j - 30) * 0.01f;
            row[7] = special;
            row[40] = special;
            var expected = new byte[2 * bytes];
            scalar(row.AsSpan(0, 32), expected.AsSpan(0, bytes));
            scalar(row.AsSpan(32, 32), expected.AsSpan(bytes, bytes));
            var actual = new byte[2 * bytes];
            format.QuantizeRow(row, actual, default);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{name} with {special}: expected {Convert.ToHexString(expected)} got {Convert.ToHexString(actual)}");
        }
    }

    /// <summary>IQ4_NL eight blocks per vector, against the scalar search block by block, with and without importance.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Iq4_nl_lanes_equal_the_scalar_reference(bool withImportance)
    {
        Assert.True(IQ4_NLVectors.IsAccelerated, "this machine has AVX2; the test must exercise the vector path");
        var blocks = OrdinaryBlocks().ToList();
        var random = new Random(99);
        for (int g = 0; g + IQ4_NLVectors.Lanes <= blocks.Count; g += IQ4_NLVectors.Lanes)
        {
            var x = blocks.Skip(g).Take(IQ4_NLVectors.Lanes).SelectMany(b => b).ToArray();
            if (g % 80 == 8) Array.Clear(x, 32, 32);                      // an all-zero block among others (scale 0)
            if (g % 80 == 16) x[70] = 3e38f;                               // squares overflow: NaN inside the search
            var qw = withImportance ? Enumerable.Range(0, x.Length).Select(_ => (float)random.NextDouble()).ToArray() : [];
            var actual = new byte[18 * IQ4_NLVectors.Lanes];
            Assert.True(IQ4_NLVectors.TryQuantize(x, actual, qw), $"group {g / 8} fell back to scalar code");
            var expected = new byte[actual.Length];
            for (int k = 0; k < IQ4_NLVectors.Lanes; k++)
                IQ4_NLFormat.QuantizeBlock(x.AsSpan(32 * k, 32), expected.AsSpan(18 * k, 18), withImportance ? qw.AsSpan(32 * k, 32) : default);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"group {g / 8}: expected {Convert.ToHexString(expected)} got {Convert.ToHexString(actual)}");
        }
        var nan = blocks.Take(IQ4_NLVectors.Lanes).SelectMany(b => b).ToArray();
        nan[40] = float.NaN;
        Assert.False(IQ4_NLVectors.TryQuantize(nan, new byte[18 * IQ4_NLVectors.Lanes], default), "a group holding NaN input is the scalar code's");
    }
}
