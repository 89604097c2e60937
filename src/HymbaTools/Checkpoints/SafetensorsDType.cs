namespace HymbaTools.Checkpoints;

/// <summary>Element types a safetensors header may name. Only F32, F16 and BF16 are model weights here.</summary>
public enum SafetensorsDType
{
    Bool, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64,
}

/// <summary>The one table of dtype names and element sizes (safetensors spec).</summary>
public static class SafetensorsDTypes
{
    private static readonly Dictionary<string, (SafetensorsDType Type, int Size)> ByName = new(StringComparer.Ordinal)
    {
        ["BOOL"] = (SafetensorsDType.Bool, 1),
        ["U8"] = (SafetensorsDType.U8, 1),
        ["I8"] = (SafetensorsDType.I8, 1),
        ["F8_E5M2"] = (SafetensorsDType.F8_E5M2, 1),
        ["F8_E4M3"] = (SafetensorsDType.F8_E4M3, 1),
        ["I16"] = (SafetensorsDType.I16, 2),
        ["U16"] = (SafetensorsDType.U16, 2),
        ["F16"] = (SafetensorsDType.F16, 2),
        ["BF16"] = (SafetensorsDType.BF16, 2),
        ["I32"] = (SafetensorsDType.I32, 4),
        ["U32"] = (SafetensorsDType.U32, 4),
        ["F32"] = (SafetensorsDType.F32, 4),
        ["F64"] = (SafetensorsDType.F64, 8),
        ["I64"] = (SafetensorsDType.I64, 8),
        ["U64"] = (SafetensorsDType.U64, 8),
    };

    /// <summary>Names that exist in newer safetensors versions but that this tool does not read (sub-byte types).</summary>
    private static readonly HashSet<string> KnownUnsupported = new(StringComparer.Ordinal) { "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64" };

    public static bool TryParse(string name, out SafetensorsDType type, out int size)
    {
        if (ByName.TryGetValue(name, out var entry)) { type = entry.Type; size = entry.Size; return true; }
        type = default; size = 0; return false;
    }

    public static bool IsKnownUnsupported(string name) => KnownUnsupported.Contains(name);

    /// <summary>The same table keyed by type (readers ask for sizes per row, so this is a lookup, not a search).</summary>
    private static readonly Dictionary<SafetensorsDType, (string Name, int Size)> ByType = ByName.ToDictionary(kv => kv.Value.Type, kv => (kv.Key, kv.Value.Size));

    public static int SizeOf(SafetensorsDType type) => ByType[type].Size;

    public static string NameOf(SafetensorsDType type) => ByType[type].Name;

    /// <summary>True for the dtypes that a model weight may have (F32, F16, BF16).</summary>
    public static bool IsFloatWeight(SafetensorsDType type) => type is SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16;
}
