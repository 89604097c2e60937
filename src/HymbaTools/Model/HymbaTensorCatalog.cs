namespace HymbaTools.Model;

/// <summary>What a checkpoint tensor is, independent of its name. Quantization policy and exporters key on this.</summary>
public enum TensorRole
{
    TokenEmbedding, MetaTokens, FinalNorm, LmHead,
    InputNorm, InProj, InProjBias, Conv1dWeight, Conv1dBias, XProj, DtProjWeight, DtProjBias, ALog, D,
    DtNorm, BNorm, CNorm, FusionNormAttention, FusionNormSsm, OutProj, OutProjBias,
    PreMlpNorm, MlpGate, MlpUp, MlpDown,
}

/// <summary>Component groups for parameter counts in reports.</summary>
public enum ParameterComponent { Embeddings, LmHead, MetaTokens, AttentionQ, AttentionK, AttentionV, Ssm, OutProj, Mlp, Norms }

/// <summary>One tensor that a checkpoint of the given config must hold.</summary>
public sealed record ExpectedTensor(string Name, TensorRole Role, int Layer, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
    public bool IsMatrix => Shape.Length == 2;
}

/// <summary>
/// The table of every HuggingFace tensor of a Hymba checkpoint: name, role and shape as functions of the
/// config (docs/architecture.md §2). Validation, `init`, parameter counts and later the quantization
/// policy and the GGUF name table all read this one list.
/// </summary>
public static class HymbaTensorCatalog
{
    public const string EmbedTokens = "model.embed_tokens.weight";
    public const string MemoryTokens = "model.memory_tokens";
    public const string FinalNorm = "model.final_layernorm.weight";
    public const string LmHead = "lm_head.weight";

    public static string LayerPrefix(int layer) => $"model.layers.{layer}.";

    /// <summary>Per-layer tensor suffixes by role (the HF state-dict names).</summary>
    public static readonly IReadOnlyDictionary<TensorRole, string> LayerSuffix = new Dictionary<TensorRole, string>
    {
        [TensorRole.InputNorm] = "input_layernorm.weight",
        [TensorRole.InProj] = "mamba.in_proj.weight",
        [TensorRole.InProjBias] = "mamba.in_proj.bias",
        [TensorRole.Conv1dWeight] = "mamba.conv1d.weight",
        [TensorRole.Conv1dBias] = "mamba.conv1d.bias",
        [TensorRole.XProj] = "mamba.x_proj.0.weight",
        [TensorRole.DtProjWeight] = "mamba.dt_proj.0.weight",
        [TensorRole.DtProjBias] = "mamba.dt_proj.0.bias",
        [TensorRole.ALog] = "mamba.A_log.0",
        [TensorRole.D] = "mamba.D.0",
        [TensorRole.DtNorm] = "mamba.dt_layernorm.weight",
        [TensorRole.BNorm] = "mamba.B_layernorm.weight",
        [TensorRole.CNorm] = "mamba.C_layernorm.weight",
        [TensorRole.FusionNormAttention] = "mamba.pre_avg_layernorm1.weight",
        [TensorRole.FusionNormSsm] = "mamba.pre_avg_layernorm2.weight",
        [TensorRole.OutProj] = "mamba.out_proj.weight",
        [TensorRole.OutProjBias] = "mamba.out_proj.bias",
        [TensorRole.PreMlpNorm] = "pre_moe_layernorm.weight",
        [TensorRole.MlpGate] = "moe.experts.0.gate_proj.weight",
        [TensorRole.MlpUp] = "moe.experts.0.up_proj.weight",
        [TensorRole.MlpDown] = "moe.experts.0.down_proj.weight",
    };

    public static string LayerTensorName(int layer, TensorRole role) => LayerPrefix(layer) + LayerSuffix[role];

    /// <summary>Every tensor the checkpoint stores, in a stable order. A tied lm_head is not listed (it is not stored).</summary>
    public static IReadOnlyList<ExpectedTensor> For(HymbaConfig c)
    {
        long d = c.HiddenSize, dIn = c.DInner, n = c.SsmStateSize, r = c.DtRank, f = c.IntermediateSize;
        var list = new List<ExpectedTensor>
        {
            new(EmbedTokens, TensorRole.TokenEmbedding, -1, [c.VocabSize, d]),
        };
        if (c.NumMemoryTokens > 0) list.Add(new(MemoryTokens, TensorRole.MetaTokens, -1, [c.NumMemoryTokens, d]));
        foreach (var layer in c.Layers)
        {
            int i = layer.Index;
            void Add(TensorRole role, params long[] shape) => list.Add(new(LayerTensorName(i, role), role, i, shape));
            Add(TensorRole.InputNorm, d);
            Add(TensorRole.InProj, layer.InProj.Rows, d);
            if (c.ProjBias) Add(TensorRole.InProjBias, layer.InProj.Rows);
            Add(TensorRole.Conv1dWeight, dIn, 1, c.ConvKernel);
            if (c.ConvBias) Add(TensorRole.Conv1dBias, dIn);
            Add(TensorRole.XProj, r + 2 * n, dIn);
            Add(TensorRole.DtProjWeight, dIn, r);
            Add(TensorRole.DtProjBias, dIn);
            Add(TensorRole.ALog, dIn, n);
            Add(TensorRole.D, dIn);
            if (c.InnerLayerNorms)
            {
                Add(TensorRole.DtNorm, r);
                Add(TensorRole.BNorm, n);
                Add(TensorRole.CNorm, n);
            }
            Add(TensorRole.FusionNormAttention, dIn);
            Add(TensorRole.FusionNormSsm, dIn);
            Add(TensorRole.OutProj, d, dIn);
            if (c.ProjBias) Add(TensorRole.OutProjBias, d);
            Add(TensorRole.PreMlpNorm, d);
            Add(TensorRole.MlpGate, f, d);
            Add(TensorRole.MlpUp, f, d);
            Add(TensorRole.MlpDown, d, f);
        }
        list.Add(new(FinalNorm, TensorRole.FinalNorm, -1, [d]));
        if (!c.TieWordEmbeddings) list.Add(new(LmHead, TensorRole.LmHead, -1, [c.VocabSize, d]));
        return list;
    }

    /// <summary>
    /// Splits a tensor's elements into report components. in_proj is split by its row blocks: Q, K and V
    /// rows count as attention, x and z rows as SSM.
    /// </summary>
    public static IEnumerable<(ParameterComponent Component, long Elements)> Components(ExpectedTensor t, HymbaConfig c)
    {
        switch (t.Role)
        {
            case TensorRole.TokenEmbedding: yield return (ParameterComponent.Embeddings, t.ElementCount); break;
            case TensorRole.LmHead: yield return (ParameterComponent.LmHead, t.ElementCount); break;
            case TensorRole.MetaTokens: yield return (ParameterComponent.MetaTokens, t.ElementCount); break;
            case TensorRole.InProj:
                var p = c.Layers[t.Layer].InProj;
                long cols = t.Shape[1];
                yield return (ParameterComponent.AttentionQ, p.Q.Length * cols);
                yield return (ParameterComponent.AttentionK, p.K.Length * cols);
                yield return (ParameterComponent.AttentionV, p.V.Length * cols);
                yield return (ParameterComponent.Ssm, (p.X.Length + p.Z.Length) * cols);
                break;
            case TensorRole.OutProj or TensorRole.OutProjBias: yield return (ParameterComponent.OutProj, t.ElementCount); break;
            case TensorRole.MlpGate or TensorRole.MlpUp or TensorRole.MlpDown: yield return (ParameterComponent.Mlp, t.ElementCount); break;
            case TensorRole.InputNorm or TensorRole.PreMlpNorm or TensorRole.FinalNorm or TensorRole.FusionNormAttention or TensorRole.FusionNormSsm:
                yield return (ParameterComponent.Norms, t.ElementCount); break;
            default: yield return (ParameterComponent.Ssm, t.ElementCount); break;
        }
    }
}
