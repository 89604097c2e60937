using HymbaTools.Common;

namespace HymbaTools.Formats.Gguf;

/// <summary>A GGUF file that is corrupt, truncated or not what this tool can read; names the key/tensor and the byte offset.</summary>
public sealed class InvalidGgufException : HymbaInputException
{
    public InvalidGgufException(string filePath, string field, string problem, long? offset = null, bool unsupported = false)
        : base(filePath, field, offset is { } o ? $"{problem} (at byte {o})" : problem)
    {
        Offset = offset;
        IsUnsupported = unsupported;
    }

    public long? Offset { get; }
    public override bool IsUnsupported { get; }
}
