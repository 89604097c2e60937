using HymbaTools.Model;
using HymbaTools.Quantization;

namespace HymbaTools.Formats.Onnx;

/// <summary>The weight types of an ONNX export (<c>hymba export --format onnx --type ...</c>).</summary>
public enum OnnxExportType { F32, F16, Int8, Int4 }

/// <summary>How one stored tensor is represented in the graph.</summary>
public enum OnnxWeightKind
{
    /// <summary>float32 initializer.</summary>
    Float32,
    /// <summary>float16 initializer cast to float32 in the graph (ORT folds the cast when the session loads).</summary>
    Float16,
    /// <summary><c>com.microsoft.MatMulNBits</c> blocks (4 or 8 bits) with float32 scales.</summary>
    NBits,
}

/// <summary>One tensor of the single-file layout and its ONNX representation.</summary>
public sealed record OnnxWeight(StoredTensor Tensor, OnnxWeightKind Kind, int Bits, string Reason)
{
    public long Bytes(int blockSize) => Kind switch
    {
        OnnxWeightKind.Float32 => Tensor.ElementCount * 4,
        OnnxWeightKind.Float16 => Tensor.ElementCount * 2,
        _ => Quantization.Onnx.MatMulNBitsPacker.Bytes(Tensor.Rows, Tensor.Columns, Bits, blockSize),
    };
}

/// <summary>
/// The ONNX precision policy is the GGUF one (<see cref="QuantizationPlan"/>) read through a table: int4 is the
/// q4_0 preset and int8 the q8_0 preset, so the same tensors stay float (norms, SSM parameters, conv kernel,
/// meta tokens: float32; x_proj/dt_proj: 8 bits, never fewer) and the tied embedding / head get the
/// head's 8 bits. MatMulNBits takes any row length (a partial last block is padded), so the type a tensor
/// asked for is used, not the GGUF shape fallback.
/// </summary>
internal static class OnnxPrecision
{
    public static string PresetOf(OnnxExportType type) => type switch
    {
        OnnxExportType.F32 => "f32",
        OnnxExportType.F16 => "f16",
        OnnxExportType.Int8 => "q8_0",
        _ => "q4_0",
    };

    /// <summary>ggml type asked for by the policy -> (kind, bits) in the graph.</summary>
    private static readonly Dictionary<GgmlType, (OnnxWeightKind Kind, int Bits)> ByGgmlType = new()
    {
        [GgmlType.F32] = (OnnxWeightKind.Float32, 32),
        [GgmlType.F16] = (OnnxWeightKind.Float16, 16),
        [GgmlType.BF16] = (OnnxWeightKind.Float16, 16),
        [GgmlType.Q8_0] = (OnnxWeightKind.NBits, 8),
        [GgmlType.Q6_K] = (OnnxWeightKind.NBits, 8),
        [GgmlType.Q5_0] = (OnnxWeightKind.NBits, 8),
        [GgmlType.Q5_1] = (OnnxWeightKind.NBits, 8),
        [GgmlType.Q5_K] = (OnnxWeightKind.NBits, 8),
        [GgmlType.Q4_0] = (OnnxWeightKind.NBits, 4),
        [GgmlType.Q4_1] = (OnnxWeightKind.NBits, 4),
        [GgmlType.Q4_K] = (OnnxWeightKind.NBits, 4),
    };

    /// <param name="budgetBits">MatMulNBits bits chosen per tensor by a bit budget (<see cref="OnnxBitBudget"/>); the others follow the policy</param>
    public static IReadOnlyList<OnnxWeight> Plan(HymbaConfig config, OnnxExportType type, IReadOnlyDictionary<string, int>? budgetBits = null)
    {
        var preset = QuantizationPreset.Find(PresetOf(type))!;
        var plan = QuantizationPlan.Create(config, preset);
        // The meta tokens enter the graph only through the state they produce (computed at export time).
        return plan.Tensors.Where(p => p.Tensor.Role != StoredRole.MetaTokens).Select(p =>
        {
            if (budgetBits is not null && budgetBits.TryGetValue(p.Tensor.Name, out int chosen))
                return new OnnxWeight(p.Tensor, OnnxWeightKind.NBits, chosen, $"bit budget: {chosen} bits by measured cost");
            var asked = p.Requested ?? p.Type;
            var (kind, bits) = ByGgmlType[asked];
            // GGUF keeps x_proj/dt_proj in F16 because no ggml block fits their widths; MatMulNBits takes any
            // width, and 8 bits (the floor the policy sets for them) reads a quarter of the bytes at decode.
            if (!preset.IsFloat && p.Tensor.Role is StoredRole.SsmXProj or StoredRole.SsmDt)
                return new OnnxWeight(p.Tensor, OnnxWeightKind.NBits, 8, "SSM Δ/B/C projection: 8 bits, never fewer");
            return new OnnxWeight(p.Tensor, kind, bits, p.Reason.Split(';')[0]);
        }).ToList();
    }
}
