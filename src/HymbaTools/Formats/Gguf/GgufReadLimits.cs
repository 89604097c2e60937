namespace HymbaTools.Formats.Gguf;

/// <summary>Caps checked before any allocation driven by a count or length field of a GGUF file.</summary>
public sealed record GgufReadLimits
{
    public static GgufReadLimits Default { get; } = new();
    public long MaxTensors { get; init; } = 1 << 20;
    public long MaxMetadataEntries { get; init; } = 1 << 20;
    /// <summary>Longest string value (a chat template or an embedded tokenizer.json fits easily).</summary>
    public long MaxStringBytes { get; init; } = 64L << 20;
    public long MaxArrayElements { get; init; } = 1L << 28;
    public int MaxArrayNesting { get; init; } = 4;
}
