using Google.Protobuf;
using HymbaTools.Formats.Onnx;
using HymbaTools.Formats.Onnx.Protos;
using HymbaTools.Quantization.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace HymbaTools.Tests.Quantization;

/// <summary>The packed layout is checked by ONNX Runtime itself: a one-node MatMulNBits model must compute A x dequant(B)^T.</summary>
public class MatMulNBitsTests
{
    private static TensorProto Tensor(string name, long[] dims, TensorProto.Types.DataType type, byte[] raw) =>
        new() { Name = name, DataType = (int)type, Dims = { dims }, RawData = ByteString.CopyFrom(raw) };

    private static ValueInfoProto Float(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (long d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
    }

    private static float[] RunMatMulNBits(MatMulNBitsWeight w, float[] a, int m)
    {
        var node = new NodeProto { OpType = "MatMulNBits", Domain = OnnxConstants.MicrosoftDomain, Name = "mm", Input = { "A", "B", "scales" }, Output = { "Y" } };
        if (w.ZeroPoints is not null) node.Input.Add("zero_points");
        foreach (var (name, value) in new[] { ("K", (long)w.K), ("N", w.N), ("bits", w.Bits), ("block_size", w.BlockSize) })
            node.Attribute.Add(new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value });
        var graph = new GraphProto { Name = "g", Node = { node }, Input = { Float("A", m, w.K) }, Output = { Float("Y", m, w.N) } };
        graph.Initializer.Add(Tensor("B", w.BShape, TensorProto.Types.DataType.Uint8, w.B));
        graph.Initializer.Add(Tensor("scales", [w.Scales.Length], TensorProto.Types.DataType.Float, System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.Scales.AsSpan()).ToArray()));
        if (w.ZeroPoints is not null) graph.Initializer.Add(Tensor("zero_points", w.ZeroPointShape, TensorProto.Types.DataType.Uint8, w.ZeroPoints));
        var model = new ModelProto { IrVersion = OnnxConstants.IrVersion, ProducerName = "HymbaTools.Tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OnnxConstants.Opset });
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = OnnxConstants.MicrosoftDomain, Version = OnnxConstants.MicrosoftOpset });
        using var session = new InferenceSession(model.ToByteArray());
        using var input = OrtValue.CreateTensorValueFromMemory(a, new long[] { m, w.K });
        using var outputs = session.Run(new RunOptions(), ["A"], [input], ["Y"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public static IEnumerable<object[]> Layouts() =>
        from bits in new[] { 4, 8 }
        from block in MatMulNBitsPacker.SupportedBlockSizes
        from symmetric in new[] { true, false }
        from k in new[] { 64, 100 } // 100: a last partial block
        select new object[] { bits, block, symmetric, k };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Onnx_Runtime_computes_with_the_packed_weight(int bits, int blockSize, bool symmetric, int k)
    {
        int n = 6, m = 3;
        var rng = new Random(bits * 1000 + blockSize + (symmetric ? 1 : 0) + k);
        var weight = Enumerable.Range(0, n * k).Select(_ => (float)(rng.NextDouble() * 2 - 0.7)).ToArray();
        var a = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var packed = MatMulNBitsPacker.Quantize(weight, n, k, bits, blockSize, symmetric);
        var dequantized = MatMulNBitsPacker.Dequantize(packed);
        var expected = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int kk = 0; kk < k; kk++) sum += a[i * k + kk] * dequantized[j * k + kk];
                expected[i * n + j] = (float)sum;
            }
        var actual = RunMatMulNBits(packed, a, m);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-4, $"Y[{i}] = {actual[i]}, expected {expected[i]}");
        // and the quantization itself is within half a step of the weight
        double maxError = weight.Zip(dequantized, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(maxError < (bits == 4 ? 0.25 : 0.02), $"max quantization error {maxError}");
    }

    [Fact]
    public void Int8_per_channel_round_trips_within_half_a_step()
    {
        var rng = new Random(5);
        int n = 4, k = 37;
        var weight = Enumerable.Range(0, n * k).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var q = Int8PerChannel.Quantize(weight, n, k);
        var back = Int8PerChannel.Dequantize(q);
        for (int row = 0; row < n; row++)
            for (int j = 0; j < k; j++)
                Assert.True(Math.Abs(weight[row * k + j] - back[row * k + j]) <= q.Scales[row] / 2 + 1e-6);
        Assert.All(q.Values, v => Assert.InRange(v, (sbyte)-127, (sbyte)127));
    }
}
