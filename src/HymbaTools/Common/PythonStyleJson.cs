using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace HymbaTools.Common;

/// <summary>
/// Serialises JSON the way Python's <c>json.dumps(obj, indent=2, sort_keys=True)</c> does, which is how
/// transformers' <c>save_pretrained</c> writes config.json: sorted keys, two-space indent, one array
/// element per line, and Python float spelling (<c>1e-06</c>, <c>10000.0</c>). Written files then diff
/// cleanly against real HuggingFace files.
/// </summary>
internal static class PythonStyleJson
{
    public static string Serialize(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(sb, node, 0);
        sb.Append('\n');
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, JsonNode? node, int depth)
    {
        switch (node)
        {
            case null: sb.Append("null"); break;
            case JsonObject obj:
                if (obj.Count == 0) { sb.Append("{}"); break; }
                sb.Append("{\n");
                var keys = obj.Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
                for (int i = 0; i < keys.Count; i++)
                {
                    Indent(sb, depth + 1);
                    sb.Append(JsonSerializer.Serialize(keys[i])).Append(": ");
                    Write(sb, obj[keys[i]], depth + 1);
                    if (i < keys.Count - 1) sb.Append(',');
                    sb.Append('\n');
                }
                Indent(sb, depth);
                sb.Append('}');
                break;
            case JsonArray arr:
                if (arr.Count == 0) { sb.Append("[]"); break; }
                sb.Append("[\n");
                for (int i = 0; i < arr.Count; i++)
                {
                    Indent(sb, depth + 1);
                    Write(sb, arr[i], depth + 1);
                    if (i < arr.Count - 1) sb.Append(',');
                    sb.Append('\n');
                }
                Indent(sb, depth);
                sb.Append(']');
                break;
            case JsonValue value:
                WriteValue(sb, value);
                break;
        }
    }

    private static void WriteValue(StringBuilder sb, JsonValue value)
    {
        if (value.TryGetValue(out JsonElement element))
        {
            // Parsed from text: keep integers as written, re-spell floats the Python way.
            if (element.ValueKind == JsonValueKind.Number)
            {
                string raw = element.GetRawText();
                sb.Append(raw.IndexOfAny(['.', 'e', 'E']) >= 0 ? FormatFloat(element.GetDouble()) : raw);
                return;
            }
        }
        else if (value.TryGetValue(out double d)) { sb.Append(FormatFloat(d)); return; }
        else if (value.TryGetValue(out float f)) { sb.Append(FormatFloat(f)); return; }
        switch (value.GetValueKind())
        {
            case JsonValueKind.String: sb.Append(JsonSerializer.Serialize(value.GetValue<string>(), EscapeOptions)); break;
            case JsonValueKind.True: sb.Append("true"); break;
            case JsonValueKind.False: sb.Append("false"); break;
            default: sb.Append(value.ToJsonString()); break;
        }
    }

    private static readonly JsonSerializerOptions EscapeOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Python repr of a float: shortest round-trip digits, ".0" on integral values, exponent form
    /// (1e-06, 1e+16) below 1e-4 and from 1e16 up. .NET's "R" uses the same digits and the same lower
    /// threshold but switches to exponents at 1e15 already.
    /// </summary>
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "NaN";
        if (double.IsInfinity(d)) return d > 0 ? "Infinity" : "-Infinity";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        int e = r.IndexOf('E');
        if (e < 0) return r.Contains('.') ? r : r + ".0";
        string mantissa = r[..e];
        int exponent = int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture);
        if (exponent == 15) return ((decimal)d).ToString(CultureInfo.InvariantCulture) + ".0";
        return $"{mantissa}e{(exponent < 0 ? '-' : '+')}{Math.Abs(exponent):00}";
    }

    private static void Indent(StringBuilder sb, int depth) => sb.Append(' ', depth * 2);
}
