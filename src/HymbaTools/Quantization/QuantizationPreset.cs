namespace HymbaTools.Quantization;

/// <summary>
/// A named precision policy. <see cref="Base"/> is the type of the bulk of the linear weights; the rules in
/// <see cref="QuantizationPlan"/> bump or keep other tensors. <see cref="FileType"/> is the GGUF
/// general.file_type (a llama_ftype) written for the preset.
/// </summary>
public sealed record QuantizationPreset(string Name, GgmlType Base, uint FileType, GgmlType TiedEmbedding, GgmlType Output, GgmlType? Bumped, string Description)
{
    /// <summary>Roles that get <see cref="Bumped"/> on llama.cpp's "more bits" layers.</summary>
    public IReadOnlyList<Model.StoredRole> BumpedRoles { get; init; } = [Model.StoredRole.AttnV, Model.StoredRole.FfnDown];

    /// <summary>Type of x_proj (which produces Δ, B and C); dt_proj stays F16 (its rows never fit a block).</summary>
    public GgmlType XProj { get; init; } = GgmlType.F16;

    public bool IsFloat => Base is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;

    public static IReadOnlyList<QuantizationPreset> All { get; } =
    [
        new("f32", GgmlType.F32, 0, GgmlType.F32, GgmlType.F32, null, "everything float32 (lossless for f32 checkpoints)"),
        new("f16", GgmlType.F16, 1, GgmlType.F16, GgmlType.F16, null, "linear weights float16, the rest float32"),
        new("bf16", GgmlType.BF16, 32, GgmlType.BF16, GgmlType.BF16, null, "linear weights bfloat16 (lossless for bf16 checkpoints), the rest float32"),
        new("q8_0", GgmlType.Q8_0, 7, GgmlType.Q8_0, GgmlType.Q8_0, null, "8-bit blocks of 32"),
        new("q4_0", GgmlType.Q4_0, 2, GgmlType.Q8_0, GgmlType.Q8_0, null, "4-bit symmetric blocks of 32; embeddings/head Q8_0"),
        new("q4_1", GgmlType.Q4_1, 3, GgmlType.Q8_0, GgmlType.Q8_0, null, "4-bit blocks of 32 with min; embeddings/head Q8_0"),
        new("q5_0", GgmlType.Q5_0, 8, GgmlType.Q8_0, GgmlType.Q8_0, null, "5-bit symmetric blocks of 32; embeddings/head Q8_0"),
        new("q5_1", GgmlType.Q5_1, 9, GgmlType.Q8_0, GgmlType.Q8_0, null, "5-bit blocks of 32 with min; embeddings/head Q8_0"),
        new("q4_k_m", GgmlType.Q4_K, 15, GgmlType.Q6_K, GgmlType.Q6_K, GgmlType.Q6_K, "Q4_K; attn_v and ffn_down Q6_K on the first/last eighth and every third layer; head Q6_K"),
        new("q5_k_m", GgmlType.Q5_K, 17, GgmlType.Q6_K, GgmlType.Q6_K, GgmlType.Q6_K, "Q5_K; attn_v and ffn_down Q6_K on the first/last eighth and every third layer; head Q6_K"),
        new("q6_k", GgmlType.Q6_K, 18, GgmlType.Q6_K, GgmlType.Q6_K, null, "Q6_K everywhere"),
        new("iq4_nl", GgmlType.IQ4_NL, 25, GgmlType.Q8_0, GgmlType.Q8_0, null, "IQ4_NL (non-linear 4-bit levels, blocks of 32: fits Hymba's widths) everywhere; embeddings/head Q8_0"),
        // Chosen by measurement on the example model (README "Which preset for Hymba"): of the mixtures within
        // q4_0's size, spending x_proj's F16 bytes on ffn_down Q5_0 in the "more bits" layers measured best.
        new("iq4_nl_m", GgmlType.IQ4_NL, 25, GgmlType.Q8_0, GgmlType.Q8_0, GgmlType.Q5_0,
            "IQ4_NL; x_proj Q8_0; ffn_down Q5_0 on the first/last eighth and every third layer; embeddings/head Q8_0")
        {
            BumpedRoles = [Model.StoredRole.FfnDown],
            XProj = GgmlType.Q8_0,
        },
    ];

    /// <summary>The GGUF general.file_type (llama_ftype) of a file whose dominant type is <paramref name="type"/>: that of the preset built on it.</summary>
    public static uint FileTypeOf(GgmlType type) => All.First(p => p.Base == type).FileType;

    public static QuantizationPreset? Find(string name) => All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
}
