using System.Text.Json;
using HymbaTools.Common;

namespace HymbaTools.Model;

/// <summary>
/// Typed access to the fields of a JSON object that names the file and the JSON path in every error.
/// Required getters never fall back to a default: a missing field is an error naming it.
/// </summary>
internal sealed class JsonFieldReader(string filePath, JsonElement root)
{
    public string FilePath { get; } = filePath;
    public JsonElement Root { get; } = root;

    public bool Has(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Undefined;

    public bool IsNull(string name) => Root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Null;

    public JsonElement Required(string name)
    {
        if (!Root.TryGetProperty(name, out var v))
            throw Error(name, "required field is missing");
        return v;
    }

    public int Int(string name, int? min = null)
    {
        var v = Required(name);
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int value))
            throw Error(name, $"is {Describe(v)}, expected an integer");
        if (min is { } m && value < m) throw Error(name, $"is {value}, expected an integer >= {m}");
        return value;
    }

    public int IntOr(string name, int fallback) => Has(name) ? Int(name) : fallback;

    public double Double(string name)
    {
        var v = Required(name);
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double value) || !double.IsFinite(value))
            throw Error(name, $"is {Describe(v)}, expected a number");
        return value;
    }

    public bool Bool(string name)
    {
        var v = Required(name);
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(name, $"is {Describe(v)}, expected true or false"),
        };
    }

    public bool BoolOr(string name, bool fallback) => Has(name) ? Bool(name) : fallback;

    public string String(string name)
    {
        var v = Required(name);
        if (v.ValueKind != JsonValueKind.String) throw Error(name, $"is {Describe(v)}, expected a string");
        return v.GetString()!;
    }

    public string? StringOrNull(string name) => Has(name) && !IsNull(name) ? String(name) : null;

    public int[] IntArray(string name)
    {
        var v = Required(name);
        if (v.ValueKind != JsonValueKind.Array) throw Error(name, $"is {Describe(v)}, expected an array of integers");
        var result = new List<int>();
        int i = 0;
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int x)) throw Error($"{name}[{i}]", $"is {Describe(e)}, expected an integer");
            result.Add(x);
            i++;
        }
        return result.ToArray();
    }

    public int[][] IntArrayArray(string name)
    {
        var v = Required(name);
        if (v.ValueKind != JsonValueKind.Array) throw Error(name, $"is {Describe(v)}, expected an array of integer arrays");
        var result = new List<int[]>();
        int i = 0;
        foreach (var group in v.EnumerateArray())
        {
            if (group.ValueKind != JsonValueKind.Array) throw Error($"{name}[{i}]", $"is {Describe(group)}, expected an array of integers");
            var inner = new List<int>();
            int j = 0;
            foreach (var e in group.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int x)) throw Error($"{name}[{i}][{j}]", $"is {Describe(e)}, expected an integer");
                inner.Add(x);
                j++;
            }
            result.Add(inner.ToArray());
            i++;
        }
        return result.ToArray();
    }

    public string[] StringArray(string name)
    {
        var v = Required(name);
        if (v.ValueKind != JsonValueKind.Array) throw Error(name, $"is {Describe(v)}, expected an array of strings");
        var result = new List<string>();
        int i = 0;
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String) throw Error($"{name}[{i}]", $"is {Describe(e)}, expected a string");
            result.Add(e.GetString()!);
            i++;
        }
        return result.ToArray();
    }

    public InvalidConfigException Error(string field, string problem, bool unsupported = false) =>
        new(FilePath, "$." + field, problem, unsupported);

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Truncate(e.GetString()!)}\"",
        JsonValueKind.Null => "null",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        _ => Truncate(e.GetRawText()),
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
