using HymbaTools.Model;

namespace HymbaTools.Runtime;

/// <summary>Anything that turns token ids into logits: the reference forward, a GGUF-loaded model, an ONNX session.</summary>
public interface IHymbaRunner : IDisposable
{
    HymbaConfig Config { get; }
    string Description { get; }
    LogitsResult Forward(long[][] ids);
    IDecodeSession StartDecode(int batch, DecodeWindowMode mode);
}

/// <summary>Incremental decoding: the first call prefills, later calls decode.</summary>
public interface IDecodeSession : IDisposable
{
    LogitsResult Step(long[][] ids);
}
