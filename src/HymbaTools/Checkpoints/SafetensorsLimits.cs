namespace HymbaTools.Checkpoints;

/// <summary>
/// Caps applied before any allocation driven by a size field in a file. The header cap is the same
/// 100 MB that the reference safetensors implementation enforces.
/// </summary>
public sealed record SafetensorsLimits
{
    public static SafetensorsLimits Default { get; } = new();

    /// <summary>Largest JSON header accepted, in bytes.</summary>
    public long MaxHeaderBytes { get; init; } = 100_000_000;

    /// <summary>Largest tensor rank accepted.</summary>
    public int MaxRank { get; init; } = 8;

    /// <summary>Size of the little-endian u64 that precedes the header.</summary>
    public const int LengthPrefixBytes = 8;
}
