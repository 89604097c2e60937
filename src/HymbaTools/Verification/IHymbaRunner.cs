using HymbaTools.Model;

namespace HymbaTools.Verification;

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

/// <summary>The TorchSharp reference forward pass as a runner.</summary>
public sealed class ReferenceRunner(HymbaModel model, string description) : IHymbaRunner
{
    public HymbaModel Model { get; } = model;
    public HymbaConfig Config => Model.Config;
    public string Description { get; } = description;
    public LogitsResult Forward(long[][] ids) => Model.Forward(ids);
    public IDecodeSession StartDecode(int batch, DecodeWindowMode mode) => new Session(Model, Model.NewCache(batch, mode));
    public void Dispose() => Model.Dispose();

    private sealed class Session(HymbaModel model, HymbaCache cache) : IDecodeSession
    {
        public LogitsResult Step(long[][] ids) => model.Step(ids, cache);
        public void Dispose() => cache.Dispose();
    }
}
