using System.Diagnostics.CodeAnalysis;
namespace HymbaTools.Quantization.BlockFormats;

/// <summary>The explicit list of codecs this tool can write and read.</summary>
internal static class BlockFormatRegistry
{
    private static readonly Dictionary<GgmlType, IBlockFormat> Formats = new IBlockFormat[]
    {
        new FloatFormat(GgmlType.F32), new FloatFormat(GgmlType.F16), new FloatFormat(GgmlType.BF16),
        new Q8_0Format(), new Q4_0Format(), new Q4_1Format(), new Q5_0Format(), new Q5_1Format(),
        new Q4_KFormat(), new Q5_KFormat(), new Q6_KFormat(), new IQ4_NLFormat(),
    }.ToDictionary(f => f.Type);

    public static IEnumerable<GgmlType> Supported => Formats.Keys;

    public static bool TryGet(GgmlType type, [MaybeNullWhen(false)] out IBlockFormat format) => Formats.TryGetValue(type, out format);

    public static IBlockFormat Get(GgmlType type) =>
        Formats.TryGetValue(type, out var f) ? f : throw new NotSupportedException($"ggml type {GgmlTypes.NameOf(type)} is not supported by this tool");
}
