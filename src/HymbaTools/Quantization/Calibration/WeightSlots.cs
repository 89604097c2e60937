using HymbaTools.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Quantization.Calibration;

/// <summary>Where a stored linear weight lives among the forward pass's float32 tensors: a tensor and its first row.</summary>
internal readonly record struct WeightSlot(Tensor Tensor, long FirstRow, long Rows, long Columns)
{
    /// <summary>The weight's rows inside the forward pass's tensor (a view: writing it changes the layer).</summary>
    public Tensor View() => Tensor.narrow(0, FirstRow, Rows);

    /// <summary>The weight's values in place, valid while <see cref="Tensor"/> lives (the tensor must be contiguous).</summary>
    public unsafe Span<float> Span() => new(TorchMemory.Pointer(Tensor) + FirstRow * Columns, checked((int)(Rows * Columns)));

    public float[] Read()
    {
        using var scope = NewDisposeScope();
        return TorchMemory.ToArray(Tensor.narrow(0, FirstRow, Rows).contiguous());
    }

    public void Write(float[] values)
    {
        using var scope = NewDisposeScope();
        using var grad = no_grad();
        Tensor.narrow(0, FirstRow, Rows).copy_(torch.tensor(values, [Rows, Columns]));
    }
}

/// <summary>
/// The table from a stored tensor (single-file layout) to the forward pass's tensor that holds it: in_proj's row
/// blocks, gate and up stacked in GateUp, the others whole; the token embedding (tied: also the head).
/// </summary>
internal static class WeightSlots
{
    public static WeightSlot? Of(LayerWeights w, StoredTensor t, HymbaConfig c)
    {
        long rows = t.Rows, cols = t.Columns;
        return t.Role switch
        {
            StoredRole.AttnQ or StoredRole.AttnK or StoredRole.AttnV or StoredRole.SsmIn or StoredRole.SsmGate
                => new WeightSlot(w.InProj, t.SourceRows!.Value.Start, rows, cols),
            StoredRole.SsmXProj => new WeightSlot(w.XProj, 0, rows, cols),
            StoredRole.SsmDt => new WeightSlot(w.DtProjWeight, 0, rows, cols),
            StoredRole.MixerOut => new WeightSlot(w.OutProj, 0, rows, cols),
            StoredRole.FfnGate => new WeightSlot(w.GateUp, 0, rows, cols),
            StoredRole.FfnUp => new WeightSlot(w.GateUp, c.IntermediateSize, rows, cols),
            StoredRole.FfnDown => new WeightSlot(w.Down, 0, rows, cols),
            _ => null,
        };
    }

    public static WeightSlot? Of(HymbaWeights w, StoredTensor t) => t.Role switch
    {
        StoredRole.TokenEmbedding => new WeightSlot(w.Embedding, 0, t.Rows, t.Columns),
        StoredRole.Output => new WeightSlot(w.LmHead, 0, t.Rows, t.Columns),
        _ when t.Layer >= 0 => Of(w.Layers[t.Layer], t, w.Config),
        _ => null,
    };
}
