using System.Text;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Synthetic;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Quantization;

public class QuantizationPlanTests
{
    private static HymbaConfig TinyA => HymbaConfig.Load(Path.Combine(Fixtures.TinyA, "config.json"));
    private static HymbaConfig Hymba15B => HymbaConfig.Parse(Encoding.UTF8.GetBytes(CheckpointPreset.Find("1.5b")!.ToConfigJson("bfloat16").ToJsonString()), "1.5b");
    private static GgmlType TypeOf(QuantizationPlan plan, string name) => plan.Tensors.Single(t => t.Tensor.Name == name).Type;

    [Fact]
    public void State_parameters_norms_conv_and_meta_tokens_are_never_quantized()
    {
        var plan = QuantizationPlan.Create(TinyA, QuantizationPreset.Find("q4_0")!);
        foreach (var p in plan.Tensors.Where(t => t.Tensor.Role is StoredRole.SsmALog or StoredRole.SsmD or StoredRole.SsmConv1d or StoredRole.SsmConv1dBias
                     or StoredRole.MetaTokens or StoredRole.AttnNorm or StoredRole.FfnNorm or StoredRole.OutputNorm or StoredRole.SsmDtBias or StoredRole.AttnOutNorm))
            Assert.Equal(GgmlType.F32, p.Type);
        Assert.Equal(GgmlType.Q4_0, TypeOf(plan, "blk.1.attn_q.weight"));
        Assert.Equal(GgmlType.F16, TypeOf(plan, "blk.1.ssm_x.weight"));
        Assert.Equal(GgmlType.F16, TypeOf(plan, "blk.1.ssm_dt.weight"));
        Assert.Equal(GgmlType.Q8_0, TypeOf(plan, "token_embd.weight")); // tied: the embedding is the output head
    }

    [Fact]
    public void Consumer_layers_have_no_k_and_v_tensors()
    {
        var plan = QuantizationPlan.Create(TinyA, QuantizationPreset.Find("q8_0")!);
        Assert.Contains(plan.Tensors, t => t.Tensor.Name == "blk.1.attn_k.weight");
        Assert.DoesNotContain(plan.Tensors, t => t.Tensor.Name == "blk.2.attn_k.weight" || t.Tensor.Name == "blk.2.attn_v.weight");
    }

    /// <summary>The 4-bit presets for Hymba's widths: no shape fallback at 1.5B and the size the README states.</summary>
    [Theory]
    [InlineData("iq4_nl", 926_200_996L)]   // 4.866 bits per weight, as q4_0
    [InlineData("iq4_nl_m", 931_141_796L)] // 4.892 bits per weight
    public void Iq4_nl_presets_fit_hymba_widths_without_fallback(string preset, long tensorBytes)
    {
        var plan = QuantizationPlan.Create(Hymba15B, QuantizationPreset.Find(preset)!);
        Assert.Empty(plan.Fallbacks);
        Assert.Equal(tensorBytes, plan.TotalBytes);
        Assert.True(plan.BitsPerWeight <= 4.9, $"{preset}: {plan.BitsPerWeight:F3} bits per weight");
        Assert.Contains(plan.Tensors, t => t.Type == GgmlType.IQ4_NL);
        Assert.Equal(GgmlType.Q8_0, plan.Tensors.Single(t => t.Tensor.Role == StoredRole.TokenEmbedding).Type);
    }

    [Fact]
    public void K_quants_fall_back_on_hymba_widths_and_the_fallbacks_are_reported()
    {
        var plan = QuantizationPlan.Create(Hymba15B, QuantizationPreset.Find("q4_k_m")!);
        Assert.Equal(GgmlType.Q5_0, TypeOf(plan, "blk.3.attn_q.weight"));      // 1600 columns: Q4_K -> Q5_0
        Assert.Equal(GgmlType.Q8_0, TypeOf(plan, "blk.0.ffn_down.weight"));    // more-bits layer: Q6_K -> Q8_0 (5504 columns)
        Assert.Equal(GgmlType.Q5_0, TypeOf(plan, "blk.4.ffn_down.weight"));    // (4 - 4) % 3 != 2: base type
        Assert.Equal(GgmlType.Q8_0, TypeOf(plan, "token_embd.weight"));        // tied head Q6_K -> Q8_0
        Assert.Equal(GgmlType.F16, TypeOf(plan, "blk.0.ssm_dt.weight"));       // 100 columns
        Assert.NotEmpty(plan.Fallbacks);
        Assert.All(plan.Fallbacks, f => Assert.Contains("fallback", f.Reason));
        Assert.Contains("Q4_K->Q5_0 x", plan.ToText());
    }

    [Fact]
    public void Q4_k_m_keeps_q4_k_where_rows_fit_256()
    {
        // A model whose widths are multiples of 256: the K-quant survives.
        var json = CheckpointPreset.Find("1.5b")!.ToConfigJson("bfloat16");
        json["hidden_size"] = 1024; json["num_attention_heads"] = 16; json["num_key_value_heads"] = 4; json["intermediate_size"] = 2048; json["v_head_dim"] = 128;
        foreach (var kv in json["conv_dim"]!.AsObject().ToList()) json["conv_dim"]![kv.Key] = 2048;
        var config = HymbaConfig.Parse(Encoding.UTF8.GetBytes(json.ToJsonString()), "c");
        var plan = QuantizationPlan.Create(config, QuantizationPreset.Find("q4_k_m")!);
        Assert.Equal(GgmlType.Q4_K, TypeOf(plan, "blk.3.attn_q.weight"));
        Assert.Equal(GgmlType.Q6_K, TypeOf(plan, "blk.0.attn_v.weight"));
        Assert.Equal(GgmlType.Q4_K, TypeOf(plan, "blk.7.attn_v.weight"));      // (7 - 4) % 3 != 2
        Assert.Equal(GgmlType.Q6_K, TypeOf(plan, "blk.9.attn_v.weight"));      // (9 - 4) % 3 == 2
    }

    [Fact]
    public void Tensor_type_overrides_apply_and_still_respect_the_block_size()
    {
        var overrides = new[] { TensorTypeOverride.Parse("ffn_down=Q8_0"), TensorTypeOverride.Parse(@"blk\.1\.attn_q=Q6_K") };
        var plan = QuantizationPlan.Create(TinyA, QuantizationPreset.Find("q4_0")!, overrides);
        Assert.Equal(GgmlType.Q8_0, TypeOf(plan, "blk.0.ffn_down.weight"));
        Assert.Equal(GgmlType.Q8_0, TypeOf(plan, "blk.1.attn_q.weight"));     // 64 columns: Q6_K -> Q8_0
        Assert.Equal(GgmlType.Q4_0, TypeOf(plan, "blk.2.attn_q.weight"));
    }

    [Theory]
    [InlineData("ffn_down")]
    [InlineData("ffn_down=Q9_9")]
    [InlineData("[=Q8_0")]
    public void Bad_overrides_are_input_errors(string text) => Assert.Throws<InvalidRequestException>(() => TensorTypeOverride.Parse(text));

    [Fact]
    public void Bits_per_weight_follow_the_types()
    {
        var f32 = QuantizationPlan.Create(TinyA, QuantizationPreset.Find("f32")!);
        Assert.Equal(32.0, f32.BitsPerWeight, 6);
        var q8 = QuantizationPlan.Create(Hymba15B, QuantizationPreset.Find("q8_0")!);
        Assert.InRange(q8.BitsPerWeight, 8.5, 8.7);
    }
}
