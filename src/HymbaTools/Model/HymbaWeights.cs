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

    public IEnumerable<Tensor> All() =>
        new[] { InputNorm, InProj, InProjBias, ConvWeight, ConvBias, XProj, DtProjWeight, DtProjBias, A, D, DtNorm, BNorm, CNorm,
            FusionNormAttention, FusionNormSsm, OutProj, OutProjBias, PreMlpNorm, GateUp, Down }.Where(t => t is not null)!;

    public void Dispose()
    {
        foreach (var t in All()) t.Dispose();
    }
}

/// <summary>
/// All weights of a Hymba model as float32 torch tensors (bf16/f16 are upcast exactly). Loaded tensor by
/// tensor straight into torch-owned memory, so peak memory is the model in float32 plus nothing.
/// </summary>
public sealed class HymbaWeights : IDisposable
{
    private HymbaWeights(HymbaConfig config, Tensor embed, Tensor? meta, Tensor finalNorm, Tensor lmHead, bool lmHeadIsEmbed, LayerWeights[] layers)
    {
        Config = config;
        Embedding = embed;
        MetaTokens = meta;
        FinalNorm = finalNorm;
        LmHead = lmHead;
        _lmHeadIsEmbedding = lmHeadIsEmbed;
        Layers = layers;
    }

    private readonly bool _lmHeadIsEmbedding;
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
        Tensor Read(string name, params long[] shape)
        {
            var actual = source.ShapeOf(name);
            if (!actual.SequenceEqual(shape))
                throw new InvalidCheckpointException(c.SourcePath, name, $"shape [{string.Join(", ", actual)}], expected [{string.Join(", ", shape)}]");
            return TorchMemory.Create(shape, span => source.CopyToFloat32(name, span));
        }
        Tensor? ReadOptional(string name, params long[] shape) => source.Contains(name) ? Read(name, shape) : null;

        long d = c.HiddenSize, dIn = c.DInner, n = c.SsmStateSize, r = c.DtRank, f = c.IntermediateSize;
        var embed = Read(HymbaTensorCatalog.EmbedTokens, c.VocabSize, d);
        var meta = c.NumMemoryTokens > 0 ? Read(HymbaTensorCatalog.MemoryTokens, c.NumMemoryTokens, d) : null;
        var finalNorm = Read(HymbaTensorCatalog.FinalNorm, d);
        bool tied = c.TieWordEmbeddings;
        var lmHead = tied ? embed : Read(HymbaTensorCatalog.LmHead, c.VocabSize, d);

        var layers = new LayerWeights[c.NumLayers];
        foreach (var plan in c.Layers)
        {
            int i = plan.Index;
            string N(TensorRole role) => HymbaTensorCatalog.LayerTensorName(i, role);
            using var aLog = Read(N(TensorRole.ALog), dIn, n);
            using var gate = Read(N(TensorRole.MlpGate), f, d);
            using var up = Read(N(TensorRole.MlpUp), f, d);
            using var conv = Read(N(TensorRole.Conv1dWeight), dIn, 1, c.ConvKernel);
            layers[i] = new LayerWeights
            {
                Plan = plan,
                InputNorm = Read(N(TensorRole.InputNorm), d),
                InProj = Read(N(TensorRole.InProj), plan.InProj.Rows, d),
                InProjBias = c.ProjBias ? Read(N(TensorRole.InProjBias), plan.InProj.Rows) : null,
                ConvWeight = conv.reshape(dIn, c.ConvKernel).contiguous(),
                ConvBias = c.ConvBias ? Read(N(TensorRole.Conv1dBias), dIn) : null,
                XProj = Read(N(TensorRole.XProj), r + 2 * n, dIn),
                DtProjWeight = Read(N(TensorRole.DtProjWeight), dIn, r),
                DtProjBias = Read(N(TensorRole.DtProjBias), dIn),
                A = aLog.exp().neg_(),
                D = Read(N(TensorRole.D), dIn),
                DtNorm = c.InnerLayerNorms ? Read(N(TensorRole.DtNorm), r) : null,
                BNorm = c.InnerLayerNorms ? Read(N(TensorRole.BNorm), n) : null,
                CNorm = c.InnerLayerNorms ? Read(N(TensorRole.CNorm), n) : null,
                FusionNormAttention = Read(N(TensorRole.FusionNormAttention), dIn),
                FusionNormSsm = Read(N(TensorRole.FusionNormSsm), dIn),
                OutProj = Read(N(TensorRole.OutProj), d, dIn),
                OutProjBias = c.ProjBias ? Read(N(TensorRole.OutProjBias), d) : null,
                PreMlpNorm = Read(N(TensorRole.PreMlpNorm), d),
                GateUp = torch.cat([gate, up], 0),
                Down = Read(N(TensorRole.MlpDown), d, f),
            };
        }
        return new HymbaWeights(c, embed, meta, finalNorm, lmHead, tied, layers);
    }

    public void Dispose()
    {
        foreach (var l in Layers) l.Dispose();
        Embedding.Dispose();
        MetaTokens?.Dispose();
        FinalNorm.Dispose();
        if (!_lmHeadIsEmbedding) LmHead.Dispose();
    }
}
