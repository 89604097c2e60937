using HymbaTools.Formats.Onnx.Protos;
using HymbaTools.Model;
using DataType = HymbaTools.Formats.Onnx.Protos.TensorProto.Types.DataType;

namespace HymbaTools.Formats.Onnx;

/// <summary>Options of the graph itself (not of the weights).</summary>
internal sealed record HymbaGraphOptions(long Opset, int BlockSize, int AccuracyLevel, OnnxOps Ops = OnnxOps.OnnxRuntime, OnnxStateType StateType = OnnxStateType.F16);

/// <summary>
/// The Hymba decoder as one ONNX graph for prefill and decode (docs/architecture.md §6 and the export README this
/// tool writes): one Make* function per part, each adding nodes for the math of the reference forward pass
/// (<see cref="HymbaModel"/>). The parts live in files of their own: this one (inputs, embedding, layer, head),
/// <c>.Attention.cs</c>, <c>.Mamba.cs</c> and <c>.Primitives.cs</c> (linear layers, norms, shapes).
/// <para>
/// Decoding state in onnxruntime-genai's layout (<see cref="HymbaStateLayout"/>): K/V of KV-owning layers (consumers
/// read their producer's; float16 by default, each head's K‖V row halved into the key and value entries), the last
/// k-1 pre-conv inputs and the SSM state of every layer (float32). Sliding groups return at most window + slack keys. The meta tokens are not in the state: their keys and
/// values and the conv and SSM state after them are constants of the graph (computed at export time,
/// <see cref="MetaTokenState"/>), so every present is exactly past + new tokens and attention_mask covers text tokens
/// only. A first call (past length 0) starts the conv and SSM recurrences from the meta-token state whatever its
/// state inputs hold (genai passes zeros). Text positions continue after the meta tokens.
/// </para>
/// <para>
/// Few, fused nodes, because at batch 1 a node's dispatch costs about as much as its arithmetic: the hidden state
/// stays [B, T, d] (no flattening reshapes), in_proj and gate/up are one MatMulNBits each (split afterwards),
/// RMSNorm is ONNX Runtime's SimplifiedLayerNormalization and fuses with the residual add before it
/// (SkipSimplifiedLayerNormalization), RoPE is RotaryEmbedding and the depthwise conv with its state and SiLU is
/// CausalConvWithState; a decode step updates the SSM state without a loop.
/// </para>
/// </summary>
internal sealed partial class HymbaOnnxGraph
{
    private readonly OnnxGraphBuilder _g;
    private readonly HymbaConfig _c;
    private readonly Dictionary<string, OnnxWeight> _weights;
    private readonly Dictionary<string, OnnxInitializer> _initializerOf;
    private readonly HymbaGraphOptions _options;
    private readonly HymbaStateLayout _state;
    private readonly OpChoices _ops;
    private readonly Dictionary<string, string> _castWeights = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _linearOutputs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _shapes = new(StringComparer.Ordinal);
    private readonly Dictionary<int, KvEntries> _kv = [];
    private readonly Dictionary<(bool Bounded, AttentionKind Kind, int? Window), string> _masks = [];
    private readonly Dictionary<bool, string> _keyPositions = [];

    // Values every layer uses, all 1-D [1] int64 unless noted.
    private string _batch = "", _newTokens = "", _endPosition = "", _startPosition = "";
    private string _firstCall = "";           // [1] bool: no text was processed before this call
    private string _decodeStep = "";          // scalar bool: one token after earlier text (the SSM's If)
    private string _positions = "";           // [T] int64, absolute positions of this call's tokens (after the meta tokens)

    private HymbaOnnxGraph(OnnxGraphBuilder g, HymbaConfig c, IReadOnlyList<OnnxWeight> weights, HymbaGraphOptions options)
    {
        _g = g;
        _c = c;
        _weights = weights.ToDictionary(w => w.Tensor.Name, StringComparer.Ordinal);
        _initializerOf = OnnxInitializers.Plan(weights).SelectMany(i => i.Members.Select(m => (m.Tensor.Name, Initializer: i)))
            .ToDictionary(p => p.Name, p => p.Initializer, StringComparer.Ordinal);
        _options = options;
        _state = new HymbaStateLayout(c, options.StateType);
        _ops = ChooseOps();
    }

    private bool HasMetaTokens => _c.NumMemoryTokens > 0;

    /// <summary>Name of the uint8 block data and the scales of an N-bit weight.</summary>
    public static string BlocksName(string weight) => weight + ".blocks";
    public static string ScalesName(string weight) => weight + ".scales";

    /// <summary>
    /// The highest absolute position the RoPE tables cover: the meta tokens plus the model's context
    /// (max_position_embeddings text tokens), what onnxruntime-genai lets a sequence reach.
    /// </summary>
    public static long MaxPositions(HymbaConfig c) => (long)c.NumMemoryTokens + c.MaxPositionEmbeddings;

    public static GraphProto Build(HymbaConfig config, IReadOnlyList<OnnxWeight> weights, HymbaGraphOptions options)
    {
        var g = new OnnxGraphBuilder("hymba", options.Opset);
        new HymbaOnnxGraph(g, config, weights, options).MakeDecoder();
        return g.Graph;
    }

    private static string W(StoredRole role, int layer = -1) => HymbaStorageLayout.NameOf(role, layer);

    private void MakeDecoder()
    {
        var c = _c;
        MakeInputsAndOutputs();
        var residual = MakeEmbedding();                                                       // [B, T, d]
        var h = MakeRmsNorm(residual, W(StoredRole.AttnNorm, 0));
        foreach (var layer in c.Layers)
        {
            string nextNorm = layer.Index + 1 < c.NumLayers ? W(StoredRole.AttnNorm, layer.Index + 1) : W(StoredRole.OutputNorm);
            (h, residual) = MakeLayer(layer, h, residual, nextNorm);
        }
        var head = c.TieWordEmbeddings ? W(StoredRole.TokenEmbedding) : W(StoredRole.Output);
        MakeLinear(h, head, HymbaOnnxNames.Logits);                                           // [B, T, V]
    }

    private void MakeInputsAndOutputs()
    {
        var c = _c;
        _g.Input(HymbaOnnxNames.InputIds, DataType.Int64, "batch", "sequence");
        _g.Input(HymbaOnnxNames.AttentionMask, DataType.Int64, "batch", "total_sequence");
        _g.Output(HymbaOnnxNames.Logits, DataType.Float, "batch", "sequence", (long)c.VocabSize);
        foreach (var state in _state.States)
        {
            _g.Input(state.Past, state.ElementType, Dims(state, "past_sequence"));
            _g.Output(state.Present, state.ElementType, Dims(state, "present_sequence"));
        }
        static object[] Dims(StateTensor state, string sequence) =>
            state.Shape.Select(d => d switch { -1 => "batch", -2 => (object)$"{sequence}.{state.Layer}", _ => d }).ToArray();
    }

    /// <summary>
    /// Token embeddings [B, T, d]; sets the per-call values: batch, new tokens, whether this is the first call and the
    /// absolute positions (text starts at M, after the meta tokens).
    /// </summary>
    private string MakeEmbedding()
    {
        long m = _c.NumMemoryTokens;
        var idsShape = _g.Op("Shape", [HymbaOnnxNames.InputIds]);
        _batch = _g.Op("Gather", [idsShape, _g.Int64s(0)]);
        _newTokens = _g.Op("Gather", [idsShape, _g.Int64s(1)]);
        var totalText = _g.Op("Gather", [_g.Op("Shape", [HymbaOnnxNames.AttentionMask]), _g.Int64s(1)]);
        if (HasMetaTokens) _firstCall = _g.Op("Equal", [totalText, _newTokens]);
        _endPosition = _g.Op("Add", [totalText, _g.Int64s(m)]);
        _startPosition = _g.Op("Sub", [_endPosition, _newTokens]);
        _positions = _g.Op("Range", [_g.Op("Squeeze", [_startPosition]), _g.Op("Squeeze", [_endPosition]), _g.Int64Scalar(1)]);
        return MakeGather(W(StoredRole.TokenEmbedding), HymbaOnnxNames.InputIds);
    }

    /// <summary>
    /// One decoder layer on its normalised input h and the residual stream; returns the next layer's normalised input
    /// (normalised with <paramref name="nextNorm"/>) and the residual stream after this layer.
    /// <code>
    ///   a, s = attention(h), ssm(h)
    ///   r += out_proj(norm1(a)·g1/2 + norm2(s)·g2/2)        (the gains are stored halved: exact, a power of two)
    ///   m = norm(r);  r += down(silu(gate(m)) ⊙ up(m));  next = norm'(r)
    /// </code>
    /// </summary>
    private (string Next, string Residual) MakeLayer(LayerPlan plan, string h, string residual, string nextNorm)
    {
        int i = plan.Index;
        var attention = MakeAttention(plan, h);
        var ssm = MakeMamba(plan, h);
        var fused = _g.Op("Add", [MakeRmsNorm(attention, Initializer(StoredRole.AttnOutNorm, i)), MakeRmsNorm(ssm, Initializer(StoredRole.SsmOutNorm, i))]);
        var (m, afterMixer) = MakeSkipRmsNorm(residual, MakeLinear(fused, W(StoredRole.MixerOut, i)), W(StoredRole.FfnNorm, i));
        var hidden = _g.Op("Mul", [Silu(MakeLinear(m, W(StoredRole.FfnGate, i))), MakeLinear(m, W(StoredRole.FfnUp, i))]);
        return MakeSkipRmsNorm(afterMixer, MakeLinear(hidden, W(StoredRole.FfnDown, i)), nextNorm);
    }

    /// <summary>The initializer a stored tensor is written as: its own name, or the name of its derived value (<see cref="OnnxDerivedWeights"/>).</summary>
    private string Initializer(StoredRole role, int layer) => _initializerOf[W(role, layer)].Name;
}
