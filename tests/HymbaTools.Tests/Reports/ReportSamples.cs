using System.Text.Json.Nodes;

namespace HymbaTools.Tests.Reports;

/// <summary>
/// A conversion report with ten targets whose figures are the example model's measured ones (README, "The example
/// model and the comparison report"; ONNX int8/int4 from "ONNX export"), with the near-coincident pairs that make
/// labelling hard: q4_0 / onnx:int4 (5.924 and 5.93 bits, KL 0.0111 and 0.0104) and q4_0 / q4_0+imatrix.
/// </summary>
public static class ReportSamples
{
    public static readonly (string Name, double Bits, double Kl, double PplRatio, double Decode, double Prefill)[] Targets =
    [
        ("gguf:f32", 32.0, 0, 1.0000, 160.2, 2410),
        ("gguf:q8_0", 9.055, 0.000106, 1.0000, 158.1, 2390),
        ("gguf:q6_k", 8.797, 0.000168, 0.9996, 157.3, 2385),
        ("gguf:q5_k_m", 7.093, 0.002243, 1.0034, 156.9, 2380),
        ("gguf:q4_k_m", 6.682, 0.003571, 1.0044, 156.0, 2377),
        ("gguf:q4_k_m+imatrix", 6.682, 0.003295, 1.0046, 155.8, 2370),
        ("gguf:q4_0", 5.924, 0.01114, 1.0059, 157.5, 2388),
        ("gguf:q4_0+imatrix", 5.924, 0.009948, 1.0068, 157.0, 2381),
        ("onnx:int8", 9.10, 0.00028, 1.0003, 1102.0, 9120),
        ("onnx:int4", 5.93, 0.0104, 0.9981, 1180.5, 9460),
    ];

    public static JsonObject Conversion() => new()
    {
        ["reference_hub"] = new JsonObject { ["repository"] = "hymba-tests/austen", ["revision"] = new string('a', 40) },
        ["reference"] = "/models/hymba-austen",
        ["token_source"] = "the built-in evaluation text (48 KB of Persuasion)",
        ["passed"] = false,
        ["gate_failures"] = new JsonArray("gate failed: gguf:q4_0: mean KL 0.01114 > --max-kl 0.01"),
        ["targets"] = new JsonArray(Targets.Select(t => (JsonNode)new JsonObject
        {
            ["name"] = t.Name,
            ["path"] = t.Name.StartsWith("onnx:", StringComparison.Ordinal) ? $"/out/onnx-{t.Name[5..]}" : $"/out/model-{t.Name[5..]}.gguf",
            ["file_bytes"] = (long)(t.Bits * 4_400_000 / 8),
            ["bits_per_weight"] = t.Bits,
            ["mean_kl"] = t.Kl,
            ["mean_kl_uncertainty"] = t.Kl * 0.05,
            ["kl_p99"] = t.Kl * 9,
            ["same_top"] = 1 - Math.Sqrt(t.Kl) * 0.7,
            ["rms_delta_p"] = Math.Sqrt(t.Kl) * 0.1,
            ["perplexity_ratio"] = t.PplRatio,
            ["perplexity_ratio_uncertainty"] = Math.Abs(t.PplRatio - 1) * 0.3 + 0.0004,
            ["max_abs_logit_diff"] = Math.Sqrt(t.Kl) * 4,
            ["prefill_tokens_per_second"] = t.Prefill,
            ["decode_tokens_per_second"] = t.Decode,
            ["runtime"] = t.Name.StartsWith("onnx:", StringComparison.Ordinal) ? $"ONNX Runtime {t.Name[5..]}" : "TorchSharp f32 (dequantized)",
        }).ToArray()),
    };
}
