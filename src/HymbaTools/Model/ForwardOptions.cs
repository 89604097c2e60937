namespace HymbaTools.Model;

/// <summary>Switches of the reference forward pass that exist to prove each component matters (tests) or to train.</summary>
public sealed record ForwardOptions
{
    public static ForwardOptions Default { get; } = new();

    /// <summary>Keep autograd on and use the torch-op scan (training).</summary>
    public bool Differentiable { get; init; }

    /// <summary>Return every decoder layer's input and the final normalised hidden states with the logits (debugging aid).</summary>
    public bool CaptureHiddenStates { get; init; }

    /// <summary>When set, receives the activation entering each linear weight (calibration: importance statistics, Hessians).</summary>
    internal IActivationRecorder? Recorder { get; init; }

    /// <summary>Deliberately wrong variants, for tests that show a component is exercised (not part of the public API).</summary>
    internal ForwardFault Fault { get; init; } = ForwardFault.None;
}

/// <summary>Known-wrong variants of the forward pass (each must move logits beyond tolerance on the fixtures).</summary>
internal enum ForwardFault
{
    None,
    SwapFusionNorms,
    TextPositionsRestartAtZero,
    WindowOffByOne,
    NoMetaTokens,
    GqaModuloMapping,
    ConsumerReadsLayerZero,
}
