using HymbaTools.Formats.Onnx;
using HymbaTools.Model;

namespace HymbaTools.Runtime;

/// <summary>
/// Bytes of an ONNX export's decoding state (batch 1) after S text tokens: what hymba's runner and onnxruntime-genai
/// both hold, since the graph returns at most window + slack keys for sliding groups and genai_config.json tells genai
/// so (<see cref="HymbaStateLayout"/>). The meta tokens are constants of the graph, in neither.
/// </summary>
public static class OnnxStateSize
{
    public static long At(HymbaConfig c, OnnxStateType keyValueType, long textTokens) => new HymbaStateLayout(c, keyValueType).BytesAt(textTokens);
}
