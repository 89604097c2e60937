namespace HymbaTools.Quantization;

/// <summary>How weights are rounded into their blocks (<c>--method</c>; recorded in GGUF and ONNX metadata by its name).</summary>
public enum RoundingMethod
{
    /// <summary>Round to nearest: each codec's own quantizer (byte-identical to ggml; MLAS's rule for MatMulNBits).</summary>
    Rtn,
    /// <summary>Error-compensated (GPTQ): columns left to right, each one's error pushed onto the later ones through the inverse input Hessian.</summary>
    Gptq,
}

/// <summary>The names of <see cref="RoundingMethod"/> on the command line and in file metadata.</summary>
public static class RoundingMethods
{
    private static readonly Dictionary<string, RoundingMethod> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["rtn"] = RoundingMethod.Rtn,
        ["gptq"] = RoundingMethod.Gptq,
    };

    public static string NameOf(RoundingMethod method) => ByName.Single(e => e.Value == method).Key;

    /// <summary>The method named by <paramref name="name"/>; an unknown name is an input error naming <paramref name="option"/>.</summary>
    public static RoundingMethod Parse(string name, string option = "--method") =>
        ByName.TryGetValue(name, out var method) ? method
            : throw new Common.InvalidRequestException(option, $"'{name}', expected {string.Join(" or ", ByName.Keys)}");
}
