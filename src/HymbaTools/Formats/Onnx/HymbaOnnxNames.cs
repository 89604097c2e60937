using System.Globalization;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// The input and output names of an exported Hymba graph (onnxruntime-genai's conventions, plus conv and SSM
/// state for the Mamba heads). K/V exist only for KV-owning layers; conv and SSM state for every layer.
/// </summary>
internal static class HymbaOnnxNames
{
    public const string InputIds = "input_ids";
    public const string AttentionMask = "attention_mask";
    public const string Logits = "logits";
    public const string ModelFile = "model.onnx";
    public const string DataFile = "model.onnx.data";
    public const string GenAiConfigFile = "genai_config.json";
    /// <summary>What genai_config.json has no words for (weight type, MatMulNBits settings, cache layout), for hymba and readers of the export.</summary>
    public const string ExportInfoFile = "hymba_export.json";

    // onnxruntime-genai's names: K/V templates it scans the graph inputs with, conv and recurrent state under its
    // default templates (past_conv_names / past_recurrent_names and their present twins in genai_config.json).
    public const string PastKeyPattern = "past_key_values.%d.key";
    public const string PastValuePattern = "past_key_values.%d.value";
    public const string PresentKeyPattern = "present.%d.key";
    public const string PresentValuePattern = "present.%d.value";
    public const string PastConvPattern = "past_key_values.%d.conv_state";
    public const string PresentConvPattern = "present.%d.conv_state";
    public const string PastSsmPattern = "past_key_values.%d.recurrent_state";
    public const string PresentSsmPattern = "present.%d.recurrent_state";

    /// <summary>The state names of exports before 0.3 (meta tokens in the cache); such a directory must be exported again.</summary>
    public const string LegacyPastConvPattern = "past_conv.%d";

    public static string Of(string pattern, int layer) => pattern.Replace("%d", layer.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);

    public static string PastKey(int layer) => Of(PastKeyPattern, layer);
    public static string PastValue(int layer) => Of(PastValuePattern, layer);
    public static string PresentKey(int layer) => Of(PresentKeyPattern, layer);
    public static string PresentValue(int layer) => Of(PresentValuePattern, layer);
    public static string PastConv(int layer) => Of(PastConvPattern, layer);
    public static string PresentConv(int layer) => Of(PresentConvPattern, layer);
    public static string PastSsm(int layer) => Of(PastSsmPattern, layer);
    public static string PresentSsm(int layer) => Of(PresentSsmPattern, layer);

    // The meta tokens' state, constants of the graph (computed at export time).
    public static string MetaKeys(int layer) => $"meta_tokens.{layer}.key";
    public static string MetaValues(int layer) => $"meta_tokens.{layer}.value";
    public static string MetaConv(int layer) => $"meta_tokens.{layer}.conv_state";
    public static string MetaSsm(int layer) => $"meta_tokens.{layer}.recurrent_state";

    /// <summary>Model metadata_props keys.</summary>
    public const string MetaSourceSha256 = "hymba.source.sha256";
    public const string MetaSourcePath = "hymba.source.path";
    /// <summary>The Hub repository (ORG/NAME) and commit, when the source is a snapshot in the local HuggingFace cache.</summary>
    public const string MetaSourceHubRepository = "hymba.source.huggingface.repository";
    public const string MetaSourceHubRevision = "hymba.source.huggingface.revision";
    public const string MetaTensorChecksums = "hymba.tensor_xxh3_128";
    /// <summary>The sha256 per-tensor key of exports written before 0.2; still verified.</summary>
    public const string MetaLegacyTensorSha256 = "hymba.tensor_sha256";
    public const string MetaToolVersion = "hymba.tool_version";
    public const string MetaType = "hymba.export.type";
    public const string MetaPreset = "hymba.export.preset";
    public const string MetaBlockSize = "hymba.export.block_size";
    public const string MetaAccuracyLevel = "hymba.export.accuracy_level";
    public const string MetaStateType = "hymba.export.state_dtype";
    public const string MetaMethod = "hymba.export.method";
    public const string MetaCalibration = "hymba.export.calibration";
}
