namespace HymbaTools.Model;

/// <summary>What a tensor of the single-file (GGUF) layout holds.</summary>
public enum StoredRole
{
    TokenEmbedding, MetaTokens, OutputNorm, Output,
    AttnNorm, AttnQ, AttnK, AttnV, SsmIn, SsmGate,
    SsmConv1d, SsmConv1dBias, SsmXProj, SsmDt, SsmDtBias, SsmALog, SsmD, SsmDtNorm, SsmBNorm, SsmCNorm,
    AttnOutNorm, SsmOutNorm, MixerOut, FfnNorm, FfnGate, FfnUp, FfnDown,
}

/// <summary>
/// One tensor of the single-file layout: where its values come from in the HuggingFace checkpoint
/// (a tensor, or a block of rows of in_proj), its shape in HuggingFace (row-major) order, and its name.
/// </summary>
public sealed record StoredTensor(string Name, StoredRole Role, int Layer, long[] Shape, string SourceName, RowBlock? SourceRows)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));
    public long Rows => Shape.Length == 1 ? 1 : Shape[0];
    public long Columns => Shape[^1];
    public bool IsMatrix => Shape.Length == 2;
}

/// <summary>
/// The single-file layout of a Hymba model and its name table (the names follow llama.cpp's where a
/// concept exists: token_embd, blk.N.attn_q, ssm_conv1d, ffn_down ...; Hymba-only tensors get names in the
/// same style). in_proj is split into its row blocks, so a KV-consumer layer simply has no attn_k/attn_v;
/// conv1d is squeezed to [d_in, k_conv]; A_log is stored as is (lossless; A = -exp(A_log) at load).
/// </summary>
public static class HymbaStorageLayout
{
    /// <summary>Name template per role; {0} is the layer index. This table is the schema (see schemas/hymba-gguf.md).</summary>
    public static readonly IReadOnlyDictionary<StoredRole, string> Names = new Dictionary<StoredRole, string>
    {
        [StoredRole.TokenEmbedding] = "token_embd.weight",
        [StoredRole.MetaTokens] = "meta_tokens",
        [StoredRole.OutputNorm] = "output_norm.weight",
        [StoredRole.Output] = "output.weight",
        [StoredRole.AttnNorm] = "blk.{0}.attn_norm.weight",
        [StoredRole.AttnQ] = "blk.{0}.attn_q.weight",
        [StoredRole.AttnK] = "blk.{0}.attn_k.weight",
        [StoredRole.AttnV] = "blk.{0}.attn_v.weight",
        [StoredRole.SsmIn] = "blk.{0}.ssm_in.weight",
        [StoredRole.SsmGate] = "blk.{0}.ssm_gate.weight",
        [StoredRole.SsmConv1d] = "blk.{0}.ssm_conv1d.weight",
        [StoredRole.SsmConv1dBias] = "blk.{0}.ssm_conv1d.bias",
        [StoredRole.SsmXProj] = "blk.{0}.ssm_x.weight",
        [StoredRole.SsmDt] = "blk.{0}.ssm_dt.weight",
        [StoredRole.SsmDtBias] = "blk.{0}.ssm_dt.bias",
        [StoredRole.SsmALog] = "blk.{0}.ssm_a_log",
        [StoredRole.SsmD] = "blk.{0}.ssm_d",
        [StoredRole.SsmDtNorm] = "blk.{0}.ssm_dt_norm.weight",
        [StoredRole.SsmBNorm] = "blk.{0}.ssm_b_norm.weight",
        [StoredRole.SsmCNorm] = "blk.{0}.ssm_c_norm.weight",
        [StoredRole.AttnOutNorm] = "blk.{0}.attn_out_norm.weight",
        [StoredRole.SsmOutNorm] = "blk.{0}.ssm_out_norm.weight",
        [StoredRole.MixerOut] = "blk.{0}.mixer_out.weight",
        [StoredRole.FfnNorm] = "blk.{0}.ffn_norm.weight",
        [StoredRole.FfnGate] = "blk.{0}.ffn_gate.weight",
        [StoredRole.FfnUp] = "blk.{0}.ffn_up.weight",
        [StoredRole.FfnDown] = "blk.{0}.ffn_down.weight",
    };

    /// <summary>HF per-layer tensor role each stored role comes from (in_proj blocks take a row range).</summary>
    private static readonly (StoredRole Stored, TensorRole Source)[] LayerRoles =
    [
        (StoredRole.AttnNorm, TensorRole.InputNorm),
        (StoredRole.SsmConv1d, TensorRole.Conv1dWeight), (StoredRole.SsmConv1dBias, TensorRole.Conv1dBias),
        (StoredRole.SsmXProj, TensorRole.XProj), (StoredRole.SsmDt, TensorRole.DtProjWeight), (StoredRole.SsmDtBias, TensorRole.DtProjBias),
        (StoredRole.SsmALog, TensorRole.ALog), (StoredRole.SsmD, TensorRole.D),
        (StoredRole.SsmDtNorm, TensorRole.DtNorm), (StoredRole.SsmBNorm, TensorRole.BNorm), (StoredRole.SsmCNorm, TensorRole.CNorm),
        (StoredRole.AttnOutNorm, TensorRole.FusionNormAttention), (StoredRole.SsmOutNorm, TensorRole.FusionNormSsm),
        (StoredRole.MixerOut, TensorRole.OutProj), (StoredRole.FfnNorm, TensorRole.PreMlpNorm),
        (StoredRole.FfnGate, TensorRole.MlpGate), (StoredRole.FfnUp, TensorRole.MlpUp), (StoredRole.FfnDown, TensorRole.MlpDown),
    ];

    public static string NameOf(StoredRole role, int layer) => string.Format(System.Globalization.CultureInfo.InvariantCulture, Names[role], layer);

    public static IReadOnlyList<StoredTensor> For(HymbaConfig c)
    {
        if (c.ProjBias)
            throw new Common.InvalidConfigException(c.SourcePath, "$.mamba_proj_bias", "true is not supported by the single-file layout (no Hymba checkpoint uses it)", unsupported: true);
        var catalog = HymbaTensorCatalog.For(c).ToDictionary(t => t.Name);
        var list = new List<StoredTensor>();
        void Whole(StoredRole role, int layer, string source)
        {
            var t = catalog[source];
            long[] shape = t.Role == TensorRole.Conv1dWeight ? [t.Shape[0], t.Shape[2]] : t.Shape;
            list.Add(new StoredTensor(NameOf(role, layer), role, layer, shape, source, null));
        }
        Whole(StoredRole.TokenEmbedding, -1, HymbaTensorCatalog.EmbedTokens);
        if (c.NumMemoryTokens > 0) Whole(StoredRole.MetaTokens, -1, HymbaTensorCatalog.MemoryTokens);
        foreach (var layer in c.Layers)
        {
            int i = layer.Index;
            string inProj = HymbaTensorCatalog.LayerTensorName(i, TensorRole.InProj);
            void Rows(StoredRole role, RowBlock rows)
            {
                if (rows.Length > 0) list.Add(new StoredTensor(NameOf(role, i), role, i, [rows.Length, c.HiddenSize], inProj, rows));
            }
            Whole(StoredRole.AttnNorm, i, HymbaTensorCatalog.LayerTensorName(i, TensorRole.InputNorm));
            Rows(StoredRole.AttnQ, layer.InProj.Q);
            Rows(StoredRole.AttnK, layer.InProj.K);
            Rows(StoredRole.AttnV, layer.InProj.V);
            Rows(StoredRole.SsmIn, layer.InProj.X);
            Rows(StoredRole.SsmGate, layer.InProj.Z);
            foreach (var (stored, source) in LayerRoles.Skip(1))
            {
                string name = HymbaTensorCatalog.LayerTensorName(i, source);
                if (catalog.ContainsKey(name)) Whole(stored, i, name);
            }
        }
        Whole(StoredRole.OutputNorm, -1, HymbaTensorCatalog.FinalNorm);
        if (!c.TieWordEmbeddings) Whole(StoredRole.Output, -1, HymbaTensorCatalog.LmHead);
        return list;
    }

    /// <summary>Roles of linear-layer weights, the only tensors a quantization preset may turn into blocks.</summary>
    public static bool IsLinearWeight(StoredRole role) => role is StoredRole.TokenEmbedding or StoredRole.Output or StoredRole.AttnQ or StoredRole.AttnK
        or StoredRole.AttnV or StoredRole.SsmIn or StoredRole.SsmGate or StoredRole.SsmXProj or StoredRole.SsmDt or StoredRole.MixerOut
        or StoredRole.FfnGate or StoredRole.FfnUp or StoredRole.FfnDown;
}
