using System.Text.Json;
using System.Text.RegularExpressions;
using HymbaTools.Formats.Gguf;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Formats;

/// <summary>schemas/hymba-gguf.md, schemas/hymba-gguf.schema.json and the code describe the same keys and names.</summary>
public class GgufSchemaTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static string Schemas => Path.Combine(AppContext.BaseDirectory, "schemas");
    private static string Markdown => File.ReadAllText(Path.Combine(Schemas, "hymba-gguf.md"));
    private static JsonElement JsonSchema => JsonDocument.Parse(File.ReadAllText(Path.Combine(Schemas, "hymba-gguf.schema.json"))).RootElement;

    [Fact]
    public void Every_hymba_key_is_documented_in_both_schemas()
    {
        var properties = JsonSchema.GetProperty("properties");
        var required = JsonSchema.GetProperty("required").EnumerateArray().Select(e => e.GetString()).ToHashSet();
        foreach (string key in HymbaGgufSchema.AllKeys)
        {
            Assert.True(properties.TryGetProperty(key, out _), $"{key} missing from hymba-gguf.schema.json");
            Assert.Contains(key, required);
            Assert.Contains($"`{key}`", Markdown);
        }
        // and nothing documented that the code does not write
        foreach (var p in properties.EnumerateObject().Where(p => p.Name.StartsWith("hymba.", StringComparison.Ordinal)))
            Assert.Contains(p.Name, HymbaGgufSchema.AllKeys);
    }

    [Fact]
    public void Every_tensor_name_is_documented()
    {
        foreach (string template in HymbaStorageLayout.Names.Values)
            Assert.Contains($"`{template.Replace("{0}", "N")}`", Markdown);
    }

    [Fact]
    public void Written_metadata_validates_against_the_json_schema()
    {
        string path = _dir.File("b.gguf");
        using (var ckpt = HymbaCheckpoint.Open(Fixtures.TinyB))
            GgufExporter.Export(ckpt, path, new GgufExportOptions { Preset = QuantizationPreset.Find("q4_k_m")! });
        using var f = GgufFile.Open(path);
        var metadata = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var key in JsonSchema.GetProperty("required").EnumerateArray().Select(e => e.GetString()!))
            Assert.True(metadata.ContainsKey(key), $"required key {key} missing");
        foreach (var property in JsonSchema.GetProperty("properties").EnumerateObject())
            if (metadata.TryGetValue(property.Name, out var value)) Validate(property.Name, property.Value, value);
    }

    /// <summary>The JSON Schema subset the file uses: type, items, const, enum, pattern, minimum.</summary>
    private static void Validate(string key, JsonElement schema, GgufValue value)
    {
        if (schema.TryGetProperty("type", out var type))
        {
            bool ok = type.GetString() switch
            {
                "integer" => value.Type is GgufValueType.UInt8 or GgufValueType.UInt16 or GgufValueType.UInt32 or GgufValueType.UInt64
                    or GgufValueType.Int8 or GgufValueType.Int16 or GgufValueType.Int32 or GgufValueType.Int64,
                "number" => value.Type is GgufValueType.Float32 or GgufValueType.Float64,
                "boolean" => value.Type == GgufValueType.Bool,
                "string" => value.Type == GgufValueType.String,
                "array" => value.Type == GgufValueType.Array,
                _ => false,
            };
            Assert.True(ok, $"{key}: {value.Type} does not match schema type {type.GetString()}");
        }
        if (schema.TryGetProperty("const", out var constant))
            Assert.Equal(constant.ToString(), value.Type == GgufValueType.String ? value.AsString : value.AsInteger.ToString());
        if (schema.TryGetProperty("enum", out var options))
        {
            var allowed = options.EnumerateArray().Select(o => o.ToString()).ToList();
            Assert.Contains(value.Type == GgufValueType.String ? value.AsString : value.AsInteger.ToString(), allowed);
        }
        if (schema.TryGetProperty("pattern", out var pattern)) Assert.Matches(new Regex(pattern.GetString()!), value.AsString);
        if (schema.TryGetProperty("minimum", out var minimum)) Assert.True(value.AsInteger >= minimum.GetInt64(), $"{key} below minimum");
        if (schema.TryGetProperty("items", out var items))
            foreach (var element in value.Elements) Validate(key + "[]", items, element);
    }
}
