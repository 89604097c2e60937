using HymbaTools.Common;
using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>Float32 weights of one decoder layer, in the layout the forward pass uses.</summary>
public sealed class LayerWeights : IDisposable
{
    public required LayerPlan Plan { get; init; }
    public required Tensor InputNorm { get; init; }
    public required Tensor InProj { get; init; }
    public Tensor? InProjBias { get; init; }
    /// <summary>conv1d.weight squeezed to [d_in, k_conv].</summary>
    public required Tensor ConvWeight { get; init; }
    public Tensor? ConvBias { get; init; }
    public required Tensor XProj { get; init; }
    public required Tensor DtProjWeight { get; init; }
    public required Tensor DtProjBias { get; init; }
    /// <summary>A = -exp(A_log), computed once in float32 as the reference does.</summary>
    public required Tensor A { get; init; }
    public required Tensor D { get; init; }
    public Tensor? DtNorm { get; init; }
    public Tensor? BNorm { get; init; }
    public Tensor? CNorm { get; init; }
    public required Tensor FusionNormAttention { get; init; }
    public required Tensor FusionNormSsm { get; init; }
    public required Tensor OutProj { get; init; }
    public Tensor? OutProjBias { get; init; }
    public required Tensor PreMlpNorm { get; init; }
    /// <summary>gate_proj and up_proj stacked as [2F, d]: one GEMM instead of two.</summary>
    public required Tensor GateUp { get; init; }
    public required Tensor Down { get; init; }
    /// <summary>Source tensors read only to derive others (A_log, gate, up, conv kernel) that these weights own.</summary>
    internal Tensor[] Owned { get; init; } = [];

    /// <summary>The tensors read as they are from the source (not the derived A, GateUp, ConvWeight).</summary>
    private IEnumerable<Tensor> Sources() =>
        new[] { InputNorm, InProj, InProjBias, ConvBias, XProj, DtProjWeight, DtProjBias, D, DtNorm, BNorm, CNorm,
            FusionNormAttention, FusionNormSsm, OutProj, OutProjBias, PreMlpNorm, Down }.Where(t => t is not null)!;

    /// <summary>
    /// The same layer reading <paramref name="replacement"/> where this one reads <paramref name="original"/>: a shallow copy
    /// for measuring a change to one weight while this layer stays as it is (it owns nothing; dispose only the replacement).
    /// </summary>
    internal LayerWeights Replacing(Tensor original, Tensor replacement)
    {
        Tensor R(Tensor t) => ReferenceEquals(t, original) ? replacement : t;
        Tensor? O(Tensor? t) => t is null ? null : R(t);
        return new LayerWeights
        {
            Plan = Plan, InputNorm = R(InputNorm), InProj = R(InProj), InProjBias = O(InProjBias), ConvWeight = R(ConvWeight), ConvBias = O(ConvBias),
            XProj = R(XProj), DtProjWeight = R(DtProjWeight), DtProjBias = R(DtProjBias), A = R(A), D = R(D), DtNorm = O(DtNorm), BNorm = O(BNorm),
            CNorm = O(CNorm), FusionNormAttention = R(FusionNormAttention), FusionNormSsm = R(FusionNormSsm), OutProj = R(OutProj),
            OutProjBias = O(OutProjBias), PreMlpNorm = R(PreMlpNorm), GateUp = R(GateUp), Down = R(Down),
        };
    }

    public void Dispose()
    {
        foreach (var t in Sources()) t.Dispose();
    }
}

/// <summary>
/// All weights of a Hymba model as float32 torch tensors (bf16/f16 are upcast exactly). Loaded tensor by
/// tensor straight into torch-owned memory, so peak memory is the model in float32 plus nothing.
/// </summary>
public sealed class HymbaWeights : IDisposable
{
    private HymbaWeights(HymbaConfig config, Tensor embed, Tensor? meta, Tensor finalNorm, Tensor lmHead, bool lmHeadIsEmbed, LayerWeights[] layers, bool ownsTensors)
    {
        _ownsTensors = ownsTensors;
        Config = config;
        Embedding = embed;
        MetaTokens = meta;
        FinalNorm = finalNorm;
        LmHead = lmHead;
        _lmHeadIsEmbedding = lmHeadIsEmbed;
        Layers = layers;
    }

    private readonly bool _lmHeadIsEmbedding;
    private readonly bool _ownsTensors;
    public HymbaConfig Config { get; }
    public Tensor Embedding { get; }
    public Tensor? MetaTokens { get; }
    public Tensor FinalNorm { get; }
    public Tensor LmHead { get; }
    public IReadOnlyList<LayerWeights> Layers { get; }

    public static HymbaWeights Load(IHymbaTensorSource source)
    {
        var c = source.Config;
        using var _ = torch.no_grad();
        return Build(c, (name, shape) => ReadChecked(source, name, shape), ownsTensors: true);
    }

    /// <summary>
    /// Weights over existing tensors (by HuggingFace name, catalog shapes), e.g. trainable parameters. A and
    /// the stacked gate/up are computed from them, so gradients reach the parameters; the parameters
    /// themselves are not disposed with these weights.
    /// </summary>
    public static HymbaWeights FromTensors(HymbaConfig config, IReadOnlyDictionary<string, Tensor> tensors) =>
        Build(config, (name, shape) => tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException(name), ownsTensors: false);

    private static HymbaWeights Build(HymbaConfig c, Func<string, long[], Tensor> read, bool ownsTensors)
    {
        long d = c.HiddenSize;
        var embed = read(HymbaTensorCatalog.EmbedTokens, [c.VocabSize, d]);
        var meta = c.NumMemoryTokens > 0 ? read(HymbaTensorCatalog.MemoryTokens, [c.NumMemoryTokens, d]) : null;
        var finalNorm = read(HymbaTensorCatalog.FinalNorm, [d]);
        bool tied = c.TieWordEmbeddings;
        var lmHead = tied ? embed : read(HymbaTensorCatalog.LmHead, [c.VocabSize, d]);
        var layers = c.Layers.Select(plan => BuildLayer(c, plan, read, ownsTensors)).ToArray();
        return new HymbaWeights(c, embed, meta, finalNorm, lmHead, tied, layers, ownsTensors);
    }

    /// <summary>
    /// One decoder layer's weights read from a source on their own, for work that walks the model a layer at a
    /// time (the meta-token state of an export) so that memory holds one layer, not the model. Dispose with
    /// <see cref="DisposeLayer"/>.
    /// </summary>
    internal static LayerWeights LoadLayer(IHymbaTensorSource source, LayerPlan plan)
    {
        using var _ = torch.no_grad();
        return BuildLayer(source.Config, plan, (name, shape) => ReadChecked(source, name, shape), ownsTensors: true);
    }

    private static Tensor ReadChecked(IHymbaTensorSource source, string name, long[] shape)
    {
        Interruption.ThrowIfRequested();
        var actual = source.ShapeOf(name);
        if (!actual.SequenceEqual(shape))
            throw new InvalidCheckpointException(source.Config.SourcePath, name, $"shape [{string.Join(", ", actual)}], expected [{string.Join(", ", shape)}]");
        return TorchMemory.Create(shape, span => source.CopyToFloat32(name, span));
    }

    private static LayerWeights BuildLayer(HymbaConfig c, LayerPlan plan, Func<string, long[], Tensor> read, bool ownsTensors)
    {
        long d = c.HiddenSize, dIn = c.DInner, n = c.SsmStateSize, r = c.DtRank, f = c.IntermediateSize;
        int i = plan.Index;
        string N(TensorRole role) => HymbaTensorCatalog.LayerTensorName(i, role);
        var aLog = read(N(TensorRole.ALog), [dIn, n]);
        var gate = read(N(TensorRole.MlpGate), [f, d]);
        var up = read(N(TensorRole.MlpUp), [f, d]);
        var conv = read(N(TensorRole.Conv1dWeight), [dIn, 1, c.ConvKernel]);
        return new LayerWeights
        {
            Plan = plan,
            InputNorm = read(N(TensorRole.InputNorm), [d]),
            InProj = read(N(TensorRole.InProj), [plan.InProj.Rows, d]),
            InProjBias = c.ProjBias ? read(N(TensorRole.InProjBias), [plan.InProj.Rows]) : null,
            ConvWeight = conv.reshape(dIn, c.ConvKernel),
            ConvBias = c.ConvBias ? read(N(TensorRole.Conv1dBias), [dIn]) : null,
            XProj = read(N(TensorRole.XProj), [r + 2 * n, dIn]),
            DtProjWeight = read(N(TensorRole.DtProjWeight), [dIn, r]),
            DtProjBias = read(N(TensorRole.DtProjBias), [dIn]),
            A = aLog.exp().neg(),
            D = read(N(TensorRole.D), [dIn]),
            DtNorm = c.InnerLayerNorms ? read(N(TensorRole.DtNorm), [r]) : null,
            BNorm = c.InnerLayerNorms ? read(N(TensorRole.BNorm), [n]) : null,
            CNorm = c.InnerLayerNorms ? read(N(TensorRole.CNorm), [n]) : null,
            FusionNormAttention = read(N(TensorRole.FusionNormAttention), [dIn]),
            FusionNormSsm = read(N(TensorRole.FusionNormSsm), [dIn]),
            OutProj = read(N(TensorRole.OutProj), [d, dIn]),
            OutProjBias = c.ProjBias ? read(N(TensorRole.OutProjBias), [d]) : null,
            PreMlpNorm = read(N(TensorRole.PreMlpNorm), [d]),
            GateUp = torch.cat([gate, up], 0),
            Down = read(N(TensorRole.MlpDown), [d, f]),
            Owned = ownsTensors ? [aLog, gate, up, conv] : [],
        };
    }

    /// <summary>Frees a layer: the derived tensors (A, stacked gate/up, conv view) always, the read ones when owned.</summary>
    internal static void DisposeLayer(LayerWeights layer, bool ownsTensors)
    {
        layer.A.Dispose();
        layer.GateUp.Dispose();
        layer.ConvWeight.Dispose();
        foreach (var t in layer.Owned) t.Dispose();
        if (ownsTensors) layer.Dispose();
    }

    public void Dispose()
    {
        foreach (var l in Layers) DisposeLayer(l, _ownsTensors);
        if (!_ownsTensors) return;
        Embedding.Dispose();
        MetaTokens?.Dispose();
        FinalNorm.Dispose();
        if (!_lmHeadIsEmbedding) LmHead.Dispose();
    }
}
