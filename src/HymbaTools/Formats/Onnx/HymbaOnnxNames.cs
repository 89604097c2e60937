using System.Globalization;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// The input and output names of an exported Hymba graph (onnxruntime-genai's conventions, plus conv and SSM
/// state for the Mamba heads). K/V exist only for KV-owning layers; conv and SSM state for every layer.
/// </summary>
public static class HymbaOnnxNames
{
    public const string InputIds = "input_ids";
    public const string AttentionMask = "attention_mask";
    public const string Logits = "logits";
    public const string ModelFile = "model.onnx";
    public const string DataFile = "model.onnx.data";
    public const string GenAiConfigFile = "genai_config.json";

    public const string PastKeyPattern = "past_key_values.%d.key";
    public const string PastValuePattern = "past_key_values.%d.value";
    public const string PresentKeyPattern = "present.%d.key";
    public const string PresentValuePattern = "present.%d.value";
    public const string PastConvPattern = "past_conv.%d";
    public const string PresentConvPattern = "present_conv.%d";
    public const string PastSsmPattern = "past_ssm.%d";
    public const string PresentSsmPattern = "present_ssm.%d";

    public static string Of(string pattern, int layer) => pattern.Replace("%d", layer.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    public static string PastKey(int layer) => Of(PastKeyPattern, layer);
    public static string PastValue(int layer) => Of(PastValuePattern, layer);
    public static string PresentKey(int layer) => Of(PresentKeyPattern, layer);
    public static string PresentValue(int layer) => Of(PresentValuePattern, layer);
    public static string PastConv(int layer) => Of(PastConvPattern, layer);
    public static string PresentConv(int layer) => Of(PresentConvPattern, layer);
    public static string PastSsm(int layer) => Of(PastSsmPattern, layer);
    public static string PresentSsm(int layer) => Of(PresentSsmPattern, layer);

    /// <summary>Model metadata_props keys.</summary>
    public const string MetaSourceSha256 = "hymba.source.sha256";
    public const string MetaSourcePath = "hymba.source.path";
    public const string MetaToolVersion = "hymba.tool_version";
    public const string MetaType = "hymba.export.type";
    public const string MetaPreset = "hymba.export.preset";
    public const string MetaBlockSize = "hymba.export.block_size";
    public const string MetaAccuracyLevel = "hymba.export.accuracy_level";
}
