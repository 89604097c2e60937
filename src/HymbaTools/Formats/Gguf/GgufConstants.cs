namespace HymbaTools.Formats.Gguf;

/// <summary>GGUF metadata value types (gguf.h gguf_type).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9,
    UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>Byte-level facts of the GGUF v3 container (ggml docs/gguf.md, gguf.cpp).</summary>
internal static class GgufConstants
{
    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;
    public const uint Version = 3;
    public const uint DefaultAlignment = 32;
    /// <summary>ggml's GGML_MAX_NAME is 64 including the terminator: names are at most 63 bytes.</summary>
    public const int MaxTensorNameBytes = 63;
    /// <summary>GGML_MAX_DIMS.</summary>
    public const int MaxDimensions = 4;
    /// <summary>Keys are at most 65535 bytes (gguf.md).</summary>
    public const int MaxKeyBytes = 65535;
    public const string AlignmentKey = "general.alignment";
    public const string ArchitectureKey = "general.architecture";
    public const string QuantizationVersionKey = "general.quantization_version";
    /// <summary>The Hub repository (ORG/NAME) a model was converted from: the key of GGUF's specification (gguf.md).</summary>
    public const string SourceHubRepositoryKey = "general.source.huggingface.repository";
    /// <summary>The commit of that repository: hymba's addition beside it (the specification has no revision key).</summary>
    public const string SourceHubRevisionKey = "general.source.huggingface.revision";
    /// <summary>llama.cpp writes quantization version 2.</summary>
    public const uint QuantizationVersion = 2;

    /// <summary>Size in bytes of a scalar value type; 0 for string and array.</summary>
    public static int ScalarSize(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        _ => 0,
    };

    public static bool IsKnown(uint type) => type <= (uint)GgufValueType.Float64;

    public static long Pad(long offset, uint alignment) => (offset + alignment - 1) / alignment * alignment;
}
