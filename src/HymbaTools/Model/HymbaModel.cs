using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace HymbaTools.Model;

/// <summary>
/// The reference forward pass of a Hymba model in float32 (docs/architecture.md §3): embedding, meta
/// tokens prepended (positions continue after them), per layer attention heads and SSM heads in parallel
/// on the same normalised input, fused as (norm1(attn) + norm2(ssm)) / 2, out_proj, residual, SwiGLU MLP;
/// final norm, meta rows dropped, lm_head. Prefill, decode and full forward are one code path over a
/// <see cref="HymbaCache"/>: a full forward is a prefill into a fresh cache.
/// </summary>
public sealed class HymbaModel : IDisposable
{
    private readonly RotaryEmbedding _rope;

    public HymbaModel(HymbaWeights weights)
    {
        // libtorch keeps one process-wide thread count; follow the tool's when one was asked for (--threads).
        if (HymbaTools.Common.ComputeThreads.IsExplicit && get_num_threads() != HymbaTools.Common.ComputeThreads.Count)
            set_num_threads(HymbaTools.Common.ComputeThreads.Count);
        Weights = weights;
        _rope = new RotaryEmbedding(weights.Config);
    }

    public static HymbaModel Load(IHymbaTensorSource source) => new(HymbaWeights.Load(source));

    public HymbaWeights Weights { get; }
    public HymbaConfig Config => Weights.Config;

    public HymbaCache NewCache(int batch, DecodeWindowMode mode = DecodeWindowMode.MatchFullForward) => new(Config, batch, mode);

    /// <summary>Full-sequence forward: logits for every text position of every row ([B, T] ids, equal lengths).</summary>
    public LogitsResult Forward(long[][] ids, ForwardOptions? options = null)
    {
        using var cache = NewCache(ids.Length);
        return Step(ids, cache, options);
    }

    /// <summary>
    /// Feeds the next tokens of every sequence (prefill when the cache is empty, decode otherwise) and
    /// returns their logits.
    /// </summary>
    public LogitsResult Step(long[][] ids, HymbaCache cache, ForwardOptions? options = null)
    {
        using var scope = torch.NewDisposeScope();
        using var grad = torch.no_grad();
        var tokens = ToTensor(ids, cache.Batch);
        options ??= ForwardOptions.Default;
        var captured = options.CaptureHiddenStates ? new List<float[]>() : null;
        var logits = Logits(tokens, cache, options, captured);
        var data = TorchMemory.ToArray(logits.contiguous());
        return new LogitsResult(data, (int)logits.shape[0], (int)logits.shape[1], (int)logits.shape[2]) { HiddenStates = captured };
    }

    private static Tensor ToTensor(long[][] ids, int batch)
    {
        if (ids.Length != batch) throw new ArgumentException($"got {ids.Length} sequences for a cache of batch {batch}");
        int length = ids[0].Length;
        if (length == 0 || ids.Any(r => r.Length != length)) throw new ArgumentException("every sequence needs the same, non-zero number of tokens");
        return torch.tensor(ids.SelectMany(r => r).ToArray(), [batch, length]);
    }

    /// <summary>
    /// Logits [B, T, V] for token ids [B, T] (int64), advancing the cache. Runs with autograd as the caller
    /// set it (the training recipe calls this with gradients enabled and <see cref="ForwardOptions.Differentiable"/>).
    /// </summary>
    public Tensor Logits(Tensor tokens, HymbaCache cache, ForwardOptions options) => Logits(tokens, cache, options, null);

    /// <param name="captured">when set, receives every decoder layer's input and the final normalised hidden states</param>
    private Tensor Logits(Tensor tokens, HymbaCache cache, ForwardOptions options, List<float[]>? captured)
    {
        var c = Config;
        var w = Weights;
        long batch = tokens.shape[0], textSteps = tokens.shape[1];
        long minId = tokens.min().item<long>(), maxId = tokens.max().item<long>();
        if (minId < 0 || maxId >= c.VocabSize)
            throw new Common.InvalidRequestException("input_ids", $"token id {(minId < 0 ? minId : maxId)} is outside the vocabulary 0..{c.VocabSize - 1}");

        var x = w.Embedding.index_select(0, tokens.flatten()).view(batch, textSteps, c.HiddenSize);
        bool prependMeta = cache.IsEmpty && w.MetaTokens is not null && options.Fault != ForwardFault.NoMetaTokens;
        long metaSteps = prependMeta ? c.NumMemoryTokens : 0;
        if (prependMeta) x = torch.cat([w.MetaTokens!.unsqueeze(0).expand(batch, -1, -1), x], 1);
        long steps = metaSteps + textSteps;

        var positions = new long[steps];
        for (long i = 0; i < steps; i++) positions[i] = cache.Length + i;
        var ropePositions = positions;
        if (options.Fault == ForwardFault.TextPositionsRestartAtZero)
            ropePositions = positions.Select(p => p >= c.NumMemoryTokens ? p - c.NumMemoryTokens : p).ToArray();
        var angles = _rope.Enabled ? _rope.Angles(ropePositions) : ((Tensor, Tensor)?)null;

        foreach (var layer in w.Layers)
        {
            // Between layers, never inside a libtorch call: an interrupt unwinds from here (Common/Interruption).
            Common.Interruption.ThrowIfRequested();
            captured?.Add(TorchMemory.ToArray(x.contiguous()));
            using var layerScope = torch.NewDisposeScope();
            x = DecoderLayer(c, _rope, layer, x, positions, cache, angles, options).MoveToOuterDisposeScope();
        }

        var normalized = RmsNorm.Apply(x, w.FinalNorm, c.RmsNormEps);
        captured?.Add(TorchMemory.ToArray(normalized.contiguous()));
        var text = normalized[.., TensorIndex.Slice(metaSteps, null), ..];
        options.Recorder?.Record(-1, ActivationPoint.HeadInput, text);
        var logits = F.linear(text, w.LmHead);

        cache.Length += steps;
        cache.TrimAfterStep();
        return logits;
    }

    /// <summary>One decoder layer on x [B, T, d], advancing the cache (static so that a walk over the layers can load them one at a time).</summary>
    internal static Tensor DecoderLayer(HymbaConfig c, RotaryEmbedding rope, LayerWeights w, Tensor x, long[] positions, HymbaCache cache, (Tensor Cos, Tensor Sin)? angles,
        ForwardOptions options)
    {
        var plan = w.Plan;
        var h = RmsNorm.Apply(x, w.InputNorm, c.RmsNormEps);
        var stats = options.Recorder;
        stats?.Record(plan.Index, ActivationPoint.MixerInput, h);
        var projected = F.linear(h, w.InProj, w.InProjBias);
        var p = plan.InProj;
        Tensor Block(RowBlock r) => projected[.., .., TensorIndex.Slice(r.Start, r.End)];

        var effectivePlan = options.Fault switch
        {
            ForwardFault.WindowOffByOne when plan.Window is { } win => plan with { Window = win - 1 },
            _ => plan,
        };
        var attention = HymbaAttention.Forward(c, effectivePlan, Block(p.Q), plan.OwnsKv ? Block(p.K) : null, plan.OwnsKv ? Block(p.V) : null,
            positions, cache, rope, angles, options.Fault);
        var ssm = HymbaMamba.Forward(c, w, Block(p.X), Block(p.Z), cache, options.Differentiable, stats);

        var (normAttention, normSsm) = options.Fault == ForwardFault.SwapFusionNorms
            ? (w.FusionNormSsm, w.FusionNormAttention)
            : (w.FusionNormAttention, w.FusionNormSsm);
        var fused = TorchScalars.Mul(TorchScalars.Add(RmsNorm.Apply(attention, normAttention, c.RmsNormEps), RmsNorm.Apply(ssm, normSsm, c.RmsNormEps)), 0.5);
        stats?.Record(plan.Index, ActivationPoint.MixerOutputInput, fused);
        x = TorchScalars.Add(x, F.linear(fused, w.OutProj, w.OutProjBias));

        var m = RmsNorm.Apply(x, w.PreMlpNorm, c.RmsNormEps);
        stats?.Record(plan.Index, ActivationPoint.MlpInput, m);
        var gateUp = F.linear(m, w.GateUp).chunk(2, -1);
        var hidden = F.silu(gateUp[0]) * gateUp[1];
        stats?.Record(plan.Index, ActivationPoint.MlpDownInput, hidden);
        return TorchScalars.Add(x, F.linear(hidden, w.Down));
    }

    public void Dispose()
    {
        _rope.Dispose();
        Weights.Dispose();
    }
}
