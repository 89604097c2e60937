using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>
/// Rotate-half RoPE with the static NTK base (docs/architecture.md §3.4). Angles are float32 products
/// position x inv_freq, with inv_freq = 1 / base^(j/dim) built in float32, exactly the reference's
/// precision; cos/sin are float32. Computing the angles in double instead moves logits at long positions.
/// </summary>
internal sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _invFreq; // [dim/2]

    public RotaryEmbedding(HymbaConfig config)
    {
        _invFreq = torch.tensor(InverseFrequencies(config));
        Enabled = config.Rope;
    }

    /// <summary>inv_freq [dim/2] in float32 as the reference builds it (the ONNX export embeds the same table).</summary>
    public static float[] InverseFrequencies(HymbaConfig config)
    {
        int dim = config.HeadDim;
        float baseF = (float)config.RopeBase; // the reference raises a Python float to a float32 tensor: base is rounded to float32
        var inv = new float[dim / 2];
        for (int j = 0; j < dim / 2; j++)
        {
            float exponent = (2 * j) / (float)dim;
            inv[j] = 1f / MathF.Pow(baseF, exponent);
        }
        return inv;
    }

    public bool Enabled { get; }

    /// <summary>cos and sin, each [T, dim], for the given absolute positions.</summary>
    public (Tensor Cos, Tensor Sin) Angles(long[] positions)
    {
        using var pos = torch.tensor(positions.Select(p => (float)p).ToArray());
        var freqs = pos.unsqueeze(1) * _invFreq.unsqueeze(0);   // float32 products, [T, dim/2]
        var emb = torch.cat([freqs, freqs], 1);
        return (emb.cos(), emb.sin());
    }

    /// <summary>x: [B, heads, T, dim]; cos/sin: [T, dim].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        var x1 = x[TensorIndex.Ellipsis, TensorIndex.Slice(0, half)];
        var x2 = x[TensorIndex.Ellipsis, TensorIndex.Slice(half, null)];
        var rotated = torch.cat([x2.neg(), x1], -1);
        return TorchScalars.Add(x * cos, rotated * sin);
    }

    public void Dispose() => _invFreq.Dispose();
}
