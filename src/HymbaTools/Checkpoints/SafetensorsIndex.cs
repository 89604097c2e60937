using System.Text.Json;
using HymbaTools.Common;

namespace HymbaTools.Checkpoints;

/// <summary>
/// <c>model.safetensors.index.json</c>: the weight_map from tensor name to shard file. Shard names are
/// refused unless they are plain file names in the checkpoint directory (no "../x", no absolute path),
/// and a tensor that the map lists twice is an error, not "last one wins".
/// </summary>
internal sealed class SafetensorsIndex
{
    public const string FileName = "model.safetensors.index.json";
    private const long MaxIndexBytes = 64L << 20;

    private SafetensorsIndex(string path, IReadOnlyDictionary<string, string> weightMap)
    {
        Path = path;
        WeightMap = weightMap;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, string> WeightMap { get; }

    /// <summary>Distinct shard file names in first-seen order.</summary>
    public IReadOnlyList<string> ShardNames => WeightMap.Values.Distinct(StringComparer.Ordinal).ToList();

    public static SafetensorsIndex Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidCheckpointException(path, "", "index file not found");
        long length = FileLength.Of(path);
        if (length > MaxIndexBytes) throw new InvalidCheckpointException(path, "", $"index is {length} bytes, more than the {MaxIndexBytes}-byte cap");
        var doc = JsonInput.Document(File.ReadAllBytes(path), 16, problem => new InvalidCheckpointException(path, "", problem));
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidCheckpointException(path, "$", $"is a JSON {root.ValueKind}, expected an object");
            if (!root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidCheckpointException(path, "$.weight_map", "missing or not an object");

            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidCheckpointException(path, $"$.weight_map.{entry.Name}", $"is a JSON {entry.Value.ValueKind}, expected a shard file name");
                string shard = entry.Value.GetString()!;
                ValidateShardName(path, entry.Name, shard);
                if (weightMap.TryGetValue(entry.Name, out var other))
                    throw new InvalidCheckpointException(path, entry.Name, $"tensor is listed twice in weight_map (shards '{other}' and '{shard}')");
                weightMap.Add(entry.Name, shard);
            }
            if (weightMap.Count == 0) throw new InvalidCheckpointException(path, "$.weight_map", "is empty, expected at least one tensor");
            return new SafetensorsIndex(path, weightMap);
        }
    }

    private static void ValidateShardName(string indexPath, string tensor, string shard)
    {
        bool bad = shard.Length == 0 || shard == "." || shard == ".." || shard.Contains('/') || shard.Contains('\\') ||
                   shard.Contains('\0') || System.IO.Path.IsPathRooted(shard);
        if (bad)
            throw new InvalidCheckpointException(indexPath, tensor, $"shard name '{shard}' is not a plain file name in the checkpoint directory (path components are refused)");
    }
}
