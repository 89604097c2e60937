using System.Globalization;
using Google.Protobuf;
using HymbaTools.Formats.Onnx.Protos;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// Appends nodes to an ONNX graph with deterministic value names (a counter shared with every subgraph, so
/// names never collide across scopes) and small constants as cached initializers. It knows nothing about
/// Hymba: <see cref="HymbaOnnxGraph"/> describes the model with it.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    private readonly int[] _counter;
    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);

    public OnnxGraphBuilder(string name, long opset) : this(name, opset, [0]) { }

    private OnnxGraphBuilder(string name, long opset, int[] counter)
    {
        Graph = new GraphProto { Name = name };
        Opset = opset;
        _counter = counter;
    }

    public GraphProto Graph { get; }

    /// <summary>The default-domain opset the graph targets (some ops changed their signature over versions).</summary>
    public long Opset { get; }

    /// <summary>A graph for a control-flow body (Scan, If) that shares this graph's name counter.</summary>
    public OnnxGraphBuilder Subgraph(string name) => new(name, Opset, _counter);

    /// <summary>A value name no other value of the graph (or of its subgraphs) has.</summary>
    public string Fresh(string hint) => $"{hint}_{_counter[0]++}";

    /// <summary>Adds one node and returns its single output (named <paramref name="output"/> when given).</summary>
    public string Op(string opType, string[] inputs, AttributeProto[]? attributes = null, string? output = null, string domain = "") =>
        Ops(opType, inputs, 1, attributes, output is null ? null : [output], domain)[0];

    public string[] Ops(string opType, string[] inputs, int outputs, AttributeProto[]? attributes = null, string[]? outputNames = null, string domain = "")
    {
        var node = new NodeProto { OpType = opType, Domain = domain, Name = Fresh(opType) };
        node.Input.AddRange(inputs);
        var names = outputNames ?? Enumerable.Range(0, outputs).Select(_ => Fresh(opType.ToLowerInvariant())).ToArray();
        node.Output.AddRange(names);
        if (attributes is not null) node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return names;
    }

    /// <summary>A 1-D int64 constant (shapes, axes, slice bounds), shared by every use of the same values.</summary>
    public string Int64s(params long[] values)
    {
        string key = "i64:" + string.Join(",", values.Select(v => v.ToString(CultureInfo.InvariantCulture)));
        return Constant(key, () => RawTensor("", [values.Length], DataType.Int64, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan())));
    }

    /// <summary>An int64 scalar constant (rank 0), as Range wants its bounds.</summary>
    public string Int64Scalar(long value) =>
        Constant("i64s:" + value.ToString(CultureInfo.InvariantCulture), () => RawTensor("", [], DataType.Int64, BitConverter.GetBytes(value)));

    /// <summary>A float32 scalar constant (rank 0).</summary>
    public string Float(float value)
    {
        string key = "f32:" + BitConverter.SingleToInt32Bits(value).ToString(CultureInfo.InvariantCulture);
        return Constant(key, () => RawTensor("", [], DataType.Float, BitConverter.GetBytes(value)));
    }

    /// <summary>A float32 constant of any shape (small tables computed at export time, such as RoPE frequencies).</summary>
    public string Floats(string name, long[] dims, float[] values)
    {
        var tensor = RawTensor(name, dims, DataType.Float, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        Graph.Initializer.Add(tensor);
        return name;
    }

    private string Constant(string key, Func<TensorProto> make)
    {
        if (_constants.TryGetValue(key, out var name)) return name;
        var tensor = make();
        tensor.Name = name = Fresh("const");
        Graph.Initializer.Add(tensor);
        _constants[key] = name;
        return name;
    }

    public static TensorProto RawTensor(string name, long[] dims, DataType type, ReadOnlySpan<byte> raw)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(raw) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    public void Input(string name, DataType type, params object[] dims) => Graph.Input.Add(ValueInfo(name, type, dims));

    public void Output(string name, DataType type, params object[] dims) => Graph.Output.Add(ValueInfo(name, type, dims));

    /// <summary>A typed value; each dim is a long (fixed), a string (symbolic) or null (unknown).</summary>
    public static ValueInfoProto ValueInfo(string name, DataType type, params object?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d switch
            {
                long v => new TensorShapeProto.Types.Dimension { DimValue = v },
                int v => new TensorShapeProto.Types.Dimension { DimValue = v },
                string s => new TensorShapeProto.Types.Dimension { DimParam = s },
                _ => new TensorShapeProto.Types.Dimension(),
            });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public static AttributeProto FloatAttribute(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto String(string name, string value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto GraphAttribute(string name, GraphProto graph) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = graph };
}
