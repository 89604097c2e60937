using System.Globalization;
using HymbaTools.Model;

namespace HymbaTools.Formats.Onnx;

/// <summary>
/// One weight initializer of the graph over the rows of one or more stored tensors. Several members make one linear
/// layer of stored tensors that read the same input (one MatMulNBits or one float MatMul), whose output is split back
/// into the members' outputs.
/// </summary>
internal sealed record OnnxInitializer(string Name, IReadOnlyList<OnnxWeight> Members)
{
    /// <summary>The constant expression the stored tensor is written as (one member), or null.</summary>
    public OnnxDerivation? Derivation { get; init; }
    public OnnxWeight First => Members[0];
    public OnnxWeightKind Kind => First.Kind;
    public int Bits => First.Bits;
    public long Rows => Members.Sum(m => m.Tensor.Rows);
    public long Columns => First.Tensor.Columns;
    public bool IsFused => Members.Count > 1;
    /// <summary>The initializer's shape in HuggingFace order [rows, columns] (1-D tensors keep their shape).</summary>
    public long[] Shape => IsFused ? [Rows, Columns] : Derivation?.Shape ?? First.Tensor.Shape;
}

/// <summary>
/// Which stored tensors share one initializer in the ONNX graph. Every layer's in_proj blocks (Q, K, V, x, z: one
/// input, the normalised hidden state) become one MatMulNBits again, and gate_proj with up_proj another; fewer,
/// larger kernels cost less per token than five and two small ones. A group is fused only when its members are
/// stored alike (same kind and bits); otherwise each stays on its own, so a mixed precision plan is never widened.
/// </summary>
internal static class OnnxInitializers
{
    /// <summary>Stored roles read from the same input, in row order, and the fused initializer's name template.</summary>
    private static readonly (StoredRole[] Roles, string Name)[] Fusions =
    [
        ([StoredRole.AttnQ, StoredRole.AttnK, StoredRole.AttnV, StoredRole.SsmIn, StoredRole.SsmGate], "blk.{0}.in_proj.weight"),
        ([StoredRole.FfnGate, StoredRole.FfnUp], "blk.{0}.ffn_gate_up.weight"),
    ];

    public static IReadOnlyList<OnnxInitializer> Plan(IReadOnlyList<OnnxWeight> weights)
    {
        var byRole = weights.ToLookup(w => (w.Tensor.Role, w.Tensor.Layer));
        var fusedInto = new Dictionary<OnnxWeight, OnnxInitializer>(ReferenceEqualityComparer.Instance);
        foreach (int layer in weights.Select(w => w.Tensor.Layer).Where(l => l >= 0).Distinct())
            foreach (var (roles, name) in Fusions)
            {
                var members = roles.SelectMany(r => byRole[(r, layer)]).ToList();
                if (members.Count < 2 || members.Any(m => m.Kind != members[0].Kind || m.Bits != members[0].Bits || m.Tensor.Columns != members[0].Tensor.Columns)) continue;
                var linear = new OnnxInitializer(string.Format(CultureInfo.InvariantCulture, name, layer), members);
                foreach (var m in members) fusedInto[m] = linear;
            }
        // Layout order, each fused layer where its first member stands.
        var result = new List<OnnxInitializer>();
        foreach (var w in weights)
        {
            if (!fusedInto.TryGetValue(w, out var linear))
                result.Add(OnnxDerivedWeights.Of(w) is { } derived ? new OnnxInitializer(derived.Name, [w]) { Derivation = derived } : new OnnxInitializer(w.Tensor.Name, [w]));
            else if (ReferenceEquals(linear.First, w)) result.Add(linear);
        }
        return result;
    }
}
