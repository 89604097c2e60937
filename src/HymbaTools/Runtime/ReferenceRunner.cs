using HymbaTools.Model;

namespace HymbaTools.Runtime;

/// <summary>The TorchSharp reference forward pass as a runner.</summary>
public sealed class ReferenceRunner(HymbaModel model, string description) : IHymbaRunner
{
    public HymbaModel Model { get; } = model;
    public HymbaConfig Config => Model.Config;
    public string Description { get; } = description;
    /// <summary>The reference computes in float32 whatever the weights were stored in (a GGUF file is dequantized when loaded).</summary>
    public string Runtime { get; init; } = "TorchSharp f32";
    public LogitsResult Forward(long[][] ids) => Model.Forward(ids);
    public IDecodeSession StartDecode(int batch, DecodeWindowMode mode) => new Session(Model, Model.NewCache(batch, mode));
    public void Dispose() => Model.Dispose();

    private sealed class Session(HymbaModel model, HymbaCache cache) : IDecodeSession
    {
        public LogitsResult Step(long[][] ids) => model.Step(ids, cache);
        public void Dispose() => cache.Dispose();
    }
}
