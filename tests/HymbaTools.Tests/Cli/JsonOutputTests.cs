using System.Text.Json;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>
/// One convention for machine-readable output (README "CLI conventions"): `--json` prints JSON on stdout, `--*-out FILE`
/// writes a file, and every JSON output has its schema in schemas/ that the output validates against.
/// </summary>
public class JsonOutputTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static JsonElement Schema(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "schemas", name))).RootElement;

    /// <summary>The JSON Schema subset the schemas use: type (or a list of types), required, properties, items, enum.</summary>
    private static void Validate(JsonElement value, JsonElement schema, string path)
    {
        if (schema.TryGetProperty("type", out var type))
        {
            var allowed = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToList() : [type.GetString()!];
            string actual = value.ValueKind switch
            {
                JsonValueKind.Object => "object", JsonValueKind.Array => "array", JsonValueKind.String => "string",
                JsonValueKind.True or JsonValueKind.False => "boolean", JsonValueKind.Null => "null",
                JsonValueKind.Number => value.TryGetInt64(out _) ? "integer" : "number",
                _ => "?",
            };
            Assert.True(allowed.Contains(actual) || (actual == "integer" && allowed.Contains("number")), $"{path}: {actual}, schema says {string.Join("|", allowed)}");
        }
        if (schema.TryGetProperty("enum", out var values)) Assert.Contains(values.EnumerateArray(), v => v.ToString() == value.ToString());
        if (schema.TryGetProperty("required", out var required))
            foreach (var key in required.EnumerateArray()) Assert.True(value.TryGetProperty(key.GetString()!, out _), $"{path}: '{key}' missing");
        if (schema.TryGetProperty("properties", out var properties) && value.ValueKind == JsonValueKind.Object)
            foreach (var p in properties.EnumerateObject())
                if (value.TryGetProperty(p.Name, out var child)) Validate(child, p.Value, $"{path}.{p.Name}");
        if (schema.TryGetProperty("items", out var items) && value.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var item in value.EnumerateArray()) Validate(item, items, $"{path}[{i++}]");
        }
    }

    private static void AssertValid(CliRunner.Result r, string schema)
    {
        Assert.True(r.ExitCode == 0, r.Stderr);
        Validate(JsonDocument.Parse(r.Stdout).RootElement, Schema(schema), "$");
    }

    [Fact]
    public void Inspect_verify_merge_and_compare_print_json_that_matches_their_schemas()
    {
        AssertValid(CliRunner.Run("inspect", Fixtures.TinyB, "--json"), "inspect-report.schema.json");
        AssertValid(CliRunner.Run("verify", Fixtures.TinyA, "--golden", Fixtures.Golden(Fixtures.TinyA), "--json"), "verify-report.schema.json");
        AssertValid(CliRunner.Run("merge-kv", Fixtures.TinyB, "--groups", "[[1,2,3,4]]", "-o", _dir.File("merged"), "--json", "--random-tokens", "64"), "merge-report.schema.json");
        string q8 = _dir.File("q8.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyB, "--type", "q8_0", "-o", q8).ExitCode);
        AssertValid(CliRunner.Run("compare", Fixtures.TinyB, q8, "--json", "--chunk", "32", "--max-tokens", "64", "--random-tokens", "96"), "comparison-report.schema.json");
        AssertValid(CliRunner.Run("generate", Path.Combine(AppContext.BaseDirectory, "example-model"), "--prompt", "It was", "--max-new-tokens", "5", "--json"), "generate-report.schema.json");
    }

    [Fact]
    public void Inspect_json_carries_every_figure_of_the_table()
    {
        var r = CliRunner.Run("inspect", Fixtures.TinyB, "--json");
        var root = JsonDocument.Parse(r.Stdout).RootElement;
        foreach (var key in new[] { "vocab_size", "intermediate_size", "ssm_state_size", "conv_kernel", "tie_word_embeddings", "rms_norm_eps", "rope_type", "gqa_group_size" })
            Assert.True(root.TryGetProperty(key, out _), $"inspect --json lacks {key}");
    }

    [Fact]
    public void Cache_lengths_must_be_positive()
    {
        Assert.Equal(2, CliRunner.Run("inspect", Fixtures.TinyA, "--seq-len", "0").ExitCode);
        Assert.Equal(2, CliRunner.Run("merge-kv", Fixtures.TinyB, "--groups", "[[1,2,3,4]]", "-o", _dir.File("m0"), "--seq-len", "0", "--random-tokens", "64").ExitCode);
    }
}
