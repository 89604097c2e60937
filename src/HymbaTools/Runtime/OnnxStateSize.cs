using HymbaTools.Formats.Onnx;
using HymbaTools.Model;

namespace HymbaTools.Runtime;

/// <summary>
/// Bytes of an ONNX export's decoding state (float32, batch 1) after S text tokens, as each runtime keeps it:
/// hymba's runner bounds the K/V of groups whose layers all slide (<see cref="OnnxDecodeSession.MostKeysHeld"/>),
/// onnxruntime-genai's cache grows with the context. The meta tokens are constants of the graph, in neither.
/// </summary>
public static class OnnxStateSize
{
    public sealed record Figures(long TextTokens, long HymbaBytes, long GenAiBytes);

    public static Figures At(HymbaConfig c, long textTokens)
    {
        var slidingWindows = c.SlidingKvWindows;
        long hymba = 0, genai = 0;
        foreach (var state in HymbaOnnxNames.States(c))
        {
            long Bytes(long tokens) => state.Shape.Select(d => d switch { -1 => 1L, -2 => tokens, _ => d }).Aggregate(1L, (a, b) => a * b) * sizeof(float);
            genai += Bytes(textTokens);
            hymba += Bytes(state.IsKeyOrValue && slidingWindows.TryGetValue(state.Layer, out int window) ? Math.Min(textTokens, OnnxDecodeSession.MostKeysHeld(window)) : textTokens);
        }
        return new Figures(textTokens, hymba, genai);
    }
}
