using System.Globalization;

namespace HymbaTools.Formats.Gguf;

/// <summary>
/// One GGUF metadata value: a scalar (boxed .NET primitive of the matching width), a string, or an array
/// of one element type (strings and nested arrays allowed). Immutable.
/// </summary>
public sealed class GgufValue
{
    private GgufValue(GgufValueType type, object value, GgufValueType elementType = GgufValueType.UInt8)
    {
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    public GgufValueType Type { get; }
    /// <summary>The element type of an array value.</summary>
    public GgufValueType ElementType { get; }
    public object Value { get; }

    public static GgufValue U8(byte v) => new(GgufValueType.UInt8, v);
    public static GgufValue I8(sbyte v) => new(GgufValueType.Int8, v);
    public static GgufValue U16(ushort v) => new(GgufValueType.UInt16, v);
    public static GgufValue I16(short v) => new(GgufValueType.Int16, v);
    public static GgufValue U32(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue I32(int v) => new(GgufValueType.Int32, v);
    public static GgufValue F32(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Str(string v) => new(GgufValueType.String, v);
    public static GgufValue U64(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue I64(long v) => new(GgufValueType.Int64, v);
    public static GgufValue F64(double v) => new(GgufValueType.Float64, v);

    /// <summary>An array; every element must have <paramref name="elementType"/>.</summary>
    public static GgufValue Array(GgufValueType elementType, IReadOnlyList<GgufValue> elements)
    {
        foreach (var e in elements)
            if (e.Type != elementType) throw new ArgumentException($"array of {elementType} holds a {e.Type}");
        return new GgufValue(GgufValueType.Array, elements, elementType);
    }

    public static GgufValue Strings(IEnumerable<string> values) => Array(GgufValueType.String, values.Select(Str).ToList());
    public static GgufValue Int32s(IEnumerable<int> values) => Array(GgufValueType.Int32, values.Select(I32).ToList());
    public static GgufValue Float32s(IEnumerable<float> values) => Array(GgufValueType.Float32, values.Select(F32).ToList());
    public static GgufValue Bools(IEnumerable<bool> values) => Array(GgufValueType.Bool, values.Select(Bool).ToList());

    public IReadOnlyList<GgufValue> Elements => Value as IReadOnlyList<GgufValue> ?? throw new InvalidOperationException($"value is a {Type}, not an array");
    public string AsString => Value as string ?? throw new InvalidOperationException($"value is a {Type}, not a string");
    public bool AsBool => Value is bool b ? b : throw new InvalidOperationException($"value is a {Type}, not a bool");

    /// <summary>Any integer type as long.</summary>
    public long AsInteger => Value switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        long v => v,
        ulong v when v <= long.MaxValue => (long)v,
        _ => throw new InvalidOperationException($"value is a {Type}, not an integer"),
    };

    public double AsDouble => Value switch
    {
        float v => v,
        double v => v,
        _ => throw new InvalidOperationException($"value is a {Type}, not a float"),
    };

    public override string ToString() => Type switch
    {
        GgufValueType.String => $"\"{AsString}\"",
        GgufValueType.Array => $"[{ElementType} x {Elements.Count}]",
        GgufValueType.Float32 => ((float)Value).ToString("R", CultureInfo.InvariantCulture),
        GgufValueType.Float64 => ((double)Value).ToString("R", CultureInfo.InvariantCulture),
        _ => Convert.ToString(Value, CultureInfo.InvariantCulture) ?? "",
    };
}
