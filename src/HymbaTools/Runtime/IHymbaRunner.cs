using HymbaTools.Model;

namespace HymbaTools.Runtime;

/// <summary>Anything that turns token ids into logits: the reference forward, a GGUF-loaded model, an ONNX session.</summary>
public interface IHymbaRunner : IDisposable
{
    HymbaConfig Config { get; }
    string Description { get; }
    /// <summary>What computes the logits, for reports that show speed ("ONNX Runtime int4", "TorchSharp f32").</summary>
    string Runtime { get; }
    LogitsResult Forward(long[][] ids);
    IDecodeSession StartDecode(int batch, DecodeWindowMode mode);

    /// <summary>
    /// How far the same tokens may legitimately give different logits when run in another shape (one token at a
    /// time, or in a batch), when the runtime picks other kernels by the number of rows (null: they must agree
    /// within the verify tolerance).
    /// </summary>
    double? ConsistencyTolerance => null;

    /// <summary>
    /// How far this runner's logits may legitimately be from an exact float32 forward pass because it keeps part of
    /// its state in fewer bits (a float16 K/V cache), with the reason; null: within the verify tolerance.
    /// </summary>
    (double Tolerance, string Reason)? ReferenceTolerance => null;
}

/// <summary>Incremental decoding: the first call prefills, later calls decode.</summary>
public interface IDecodeSession : IDisposable
{
    LogitsResult Step(long[][] ids);
}
