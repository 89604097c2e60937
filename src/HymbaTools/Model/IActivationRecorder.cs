using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>Where in a layer an activation enters a linear weight.</summary>
internal enum ActivationPoint
{
    /// <summary>Normalised layer input, read by all in_proj blocks (Q, K, V, x, z).</summary>
    MixerInput,
    /// <summary>Post-conv SSM input u, read by x_proj.</summary>
    SsmProjectionInput,
    /// <summary>Normalised dt, read by dt_proj.</summary>
    DtProjectionInput,
    /// <summary>Fused attention + SSM output, read by out_proj.</summary>
    MixerOutputInput,
    /// <summary>Normalised input of the MLP, read by gate and up.</summary>
    MlpInput,
    /// <summary>silu(gate) * up, read by down.</summary>
    MlpDownInput,
    /// <summary>Final normalised hidden states of text positions, read by the output head.</summary>
    HeadInput,
}

/// <summary>
/// Receives the activation entering each linear weight during a forward pass (calibration): the importance
/// statistics (<see cref="ActivationStatistics"/>), or the Hessians of error-compensated rounding (Quantization/Calibration).
/// </summary>
internal interface IActivationRecorder
{
    /// <param name="layer">the decoder layer, or -1 for the head</param>
    /// <param name="activation">[..., columns]: every position of the pass, meta tokens included (the head: text positions)</param>
    void Record(int layer, ActivationPoint point, Tensor activation);
}
