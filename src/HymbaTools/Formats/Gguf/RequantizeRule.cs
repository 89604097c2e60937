using HymbaTools.Common;
using HymbaTools.Quantization;

namespace HymbaTools.Formats.Gguf;

/// <summary>
/// One rule for every writer that reads a GGUF file (`quantize` to GGUF, `export` to ONNX): tensors stored quantized
/// and written in another form are quantized a second time, which adds a second rounding error to the first; that
/// happens only with --allow-requantize, and then with a warning naming them.
/// </summary>
public static class RequantizeRule
{
    public static bool IsFloat(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;

    /// <summary>Refuses unless allowed; <paramref name="requantized"/> lists "name: FROM -> TO" per tensor.</summary>
    public static void Check(IReadOnlyList<string> requantized, bool allow)
    {
        if (requantized.Count > 0 && !allow)
            throw new InvalidRequestException("--allow-requantize",
                $"{requantized.Count} tensor(s) of the input are quantized already ({requantized[0]}{(requantized.Count > 1 ? ", ..." : "")}); " +
                "quantizing them again adds a second rounding error to the first. Quantize the original checkpoint, or pass --allow-requantize");
    }

    /// <summary>The warning line once requantizing was allowed; null when nothing was requantized.</summary>
    public static string? Warning(IReadOnlyList<string> requantized, string listedWhere) => requantized.Count == 0 ? null :
        $"warning: requantized {requantized.Count} already-quantized tensor(s) ({requantized[0]}{(requantized.Count > 1 ? ", ..." : "")}): " +
        $"expect more error than quantizing the original checkpoint; {listedWhere}";
}
