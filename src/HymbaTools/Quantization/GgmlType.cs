namespace HymbaTools.Quantization;

/// <summary>ggml tensor types (ids as in ggml.h; the GGUF tensor-info type field).</summary>
public enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
    TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
}

/// <summary>
/// The one table of block sizes and bytes per block (ggml-common.h / gguf-py GGML_QUANT_SIZES). Readers,
/// writers and quantizers all derive byte sizes from it; nothing else hard-codes 18 or 34.
/// </summary>
public static class GgmlTypes
{
    public readonly record struct Traits(GgmlType Type, string Name, int BlockSize, int BlockBytes)
    {
        public double BitsPerWeight => BlockBytes * 8.0 / BlockSize;
    }

    public const int SuperBlock = 256; // QK_K

    private static readonly Dictionary<GgmlType, Traits> Table = new Traits[]
    {
        new(GgmlType.F32, "F32", 1, 4), new(GgmlType.F16, "F16", 1, 2), new(GgmlType.BF16, "BF16", 1, 2),
        new(GgmlType.Q4_0, "Q4_0", 32, 18), new(GgmlType.Q4_1, "Q4_1", 32, 20),
        new(GgmlType.Q5_0, "Q5_0", 32, 22), new(GgmlType.Q5_1, "Q5_1", 32, 24),
        new(GgmlType.Q8_0, "Q8_0", 32, 34), new(GgmlType.Q8_1, "Q8_1", 32, 36),
        new(GgmlType.Q2_K, "Q2_K", 256, 84), new(GgmlType.Q3_K, "Q3_K", 256, 110), new(GgmlType.Q4_K, "Q4_K", 256, 144),
        new(GgmlType.Q5_K, "Q5_K", 256, 176), new(GgmlType.Q6_K, "Q6_K", 256, 210), new(GgmlType.Q8_K, "Q8_K", 256, 292),
        new(GgmlType.IQ2_XXS, "IQ2_XXS", 256, 66), new(GgmlType.IQ2_XS, "IQ2_XS", 256, 74), new(GgmlType.IQ3_XXS, "IQ3_XXS", 256, 98),
        new(GgmlType.IQ1_S, "IQ1_S", 256, 50), new(GgmlType.IQ4_NL, "IQ4_NL", 32, 18), new(GgmlType.IQ3_S, "IQ3_S", 256, 110),
        new(GgmlType.IQ2_S, "IQ2_S", 256, 82), new(GgmlType.IQ4_XS, "IQ4_XS", 256, 136),
        new(GgmlType.I8, "I8", 1, 1), new(GgmlType.I16, "I16", 1, 2), new(GgmlType.I32, "I32", 1, 4), new(GgmlType.I64, "I64", 1, 8),
        new(GgmlType.F64, "F64", 1, 8), new(GgmlType.IQ1_M, "IQ1_M", 256, 56),
        new(GgmlType.TQ1_0, "TQ1_0", 256, 54), new(GgmlType.TQ2_0, "TQ2_0", 256, 66), new(GgmlType.MXFP4, "MXFP4", 32, 17),
    }.ToDictionary(t => t.Type);

    public static bool IsKnown(uint id) => Table.ContainsKey((GgmlType)id);

    public static Traits Of(GgmlType type) => Table.TryGetValue(type, out var t) ? t : throw new ArgumentOutOfRangeException(nameof(type), $"unknown ggml type {(uint)type}");

    public static string NameOf(GgmlType type) => Table.TryGetValue(type, out var t) ? t.Name : $"type{(uint)type}";

    public static bool TryParse(string name, out GgmlType type)
    {
        foreach (var t in Table.Values)
            if (string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase)) { type = t.Type; return true; }
        type = default;
        return false;
    }

    /// <summary>True when a row of <paramref name="rowLength"/> elements is a whole number of blocks.</summary>
    public static bool FitsRow(GgmlType type, long rowLength) => rowLength % Of(type).BlockSize == 0;

    /// <summary>Bytes of one row; the row must be a whole number of blocks.</summary>
    public static long RowBytes(GgmlType type, long rowLength)
    {
        var t = Of(type);
        if (rowLength % t.BlockSize != 0) throw new ArgumentException($"row of {rowLength} elements is not a multiple of the {t.Name} block size {t.BlockSize}");
        return checked(rowLength / t.BlockSize * t.BlockBytes);
    }
}
