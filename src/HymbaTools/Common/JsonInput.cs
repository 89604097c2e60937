using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;

namespace HymbaTools.Common;

/// <summary>
/// JSON from a file that cannot be trusted: invalid UTF-8 (which System.Text.Json only notices when a string is
/// read, long after parsing), bad syntax, nesting deeper than the format needs and duplicate keys all become input
/// errors naming the file, through the error factory of the caller's format.
/// </summary>
internal static class JsonInput
{
    public static JsonDocument Document(ReadOnlyMemory<byte> utf8, int maxDepth, Func<string, Exception> error)
    {
        CheckUtf8(utf8.Span, error);
        try { return JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = maxDepth }); }
        catch (JsonException e) { throw error($"not valid JSON ({e.Message.Split('.')[0]})"); }
    }

    /// <summary>A JSON object as a mutable tree (every key checked for duplicates now, not at first use).</summary>
    public static JsonObject ObjectTree(byte[] utf8, int maxDepth, Func<string, Exception> error)
    {
        CheckUtf8(utf8, error);
        JsonNode? node;
        try { node = JsonNode.Parse(utf8, documentOptions: new JsonDocumentOptions { MaxDepth = maxDepth }); }
        catch (JsonException e) { throw error($"not valid JSON ({e.Message.Split('.')[0]})"); }
        if (node is not JsonObject obj) throw error($"is a JSON {node?.GetValueKind().ToString() ?? "null"}, expected an object");
        try { CheckKeys(obj); }
        catch (ArgumentException e) { throw error($"a key appears twice ({e.Message.Split('.')[0]})"); }
        return obj;
    }

    private static void CheckKeys(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, value) in o) CheckKeys(value);
                break;
            case JsonArray a:
                foreach (var value in a) CheckKeys(value);
                break;
        }
    }

    private static void CheckUtf8(ReadOnlySpan<byte> utf8, Func<string, Exception> error)
    {
        if (Utf8.IsValid(utf8)) return;
        int valid = 0;
        while (valid < utf8.Length && Utf8.IsValid(utf8[..(valid + 1)])) valid++;
        throw error($"not valid UTF-8 (at byte {valid})");
    }
}
