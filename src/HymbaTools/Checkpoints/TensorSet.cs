using System.Diagnostics.CodeAnalysis;
using HymbaTools.Common;

namespace HymbaTools.Checkpoints;

/// <summary>
/// All tensors of a checkpoint, across one file or several shards, by name. Owns the open files.
/// For sharded checkpoints the index and the shard headers are cross-checked: every mapped tensor is in
/// its shard, no shard holds an unmapped tensor, and no tensor is stored twice.
/// </summary>
public sealed class TensorSet : IDisposable
{
    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, TensorView> _byName;

    private TensorSet(List<SafetensorsFile> files, Dictionary<string, TensorView> byName)
    {
        _files = files;
        _byName = byName;
    }

    public static TensorSet Empty() => new([], new Dictionary<string, TensorView>(StringComparer.Ordinal));

    public IReadOnlyList<SafetensorsFile> Files => _files;
    public IReadOnlyDictionary<string, TensorView> ByName => _byName;
    public int Count => _byName.Count;
    public bool TryGet(string name, [MaybeNullWhen(false)] out TensorView view) => _byName.TryGetValue(name, out view);

    /// <summary>Tensors in a stable (ordinal) name order.</summary>
    public IEnumerable<TensorView> InNameOrder => _byName.Values.OrderBy(t => t.Name, StringComparer.Ordinal);

    public static TensorSet OpenSingle(string path, SafetensorsLimits? limits = null)
    {
        var file = SafetensorsFile.Open(path, limits);
        var map = new Dictionary<string, TensorView>(StringComparer.Ordinal);
        foreach (var t in file.Tensors) map.Add(t.Name, t);
        return new TensorSet([file], map);
    }

    public static TensorSet OpenSharded(string indexPath, SafetensorsLimits? limits = null)
    {
        var index = SafetensorsIndex.Load(indexPath);
        string directory = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var files = new List<SafetensorsFile>();
        try
        {
            foreach (string shard in index.ShardNames.Order(StringComparer.Ordinal))
            {
                string shardPath = Path.Combine(directory, shard);
                if (!File.Exists(shardPath))
                {
                    int count = index.WeightMap.Count(kv => kv.Value == shard);
                    throw new InvalidCheckpointException(indexPath, shard, $"shard file is missing ({count} tensors are mapped to it)");
                }
                files.Add(SafetensorsFile.Open(shardPath, limits));
            }

            // First: no tensor may be stored twice (whatever the index says); then: each is where the index says.
            var map = new Dictionary<string, TensorView>(StringComparer.Ordinal);
            foreach (var file in files)
                foreach (var t in file.Tensors)
                {
                    if (map.TryGetValue(t.Name, out var first))
                        throw new InvalidCheckpointException(file.Path, t.Name, $"tensor is stored in two shards ('{Path.GetFileName(first.FilePath)}' and '{Path.GetFileName(file.Path)}')");
                    map.Add(t.Name, t);
                }
            foreach (var t in map.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                string shardName = Path.GetFileName(t.FilePath);
                if (!index.WeightMap.TryGetValue(t.Name, out var mapped))
                    throw new InvalidCheckpointException(t.FilePath, t.Name, $"tensor is in shard '{shardName}' but not in {SafetensorsIndex.FileName}");
                if (mapped != shardName)
                    throw new InvalidCheckpointException(t.FilePath, t.Name, $"tensor is in shard '{shardName}' but the index maps it to '{mapped}'");
            }
            var missing = index.WeightMap.Keys.Where(k => !map.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            if (missing.Count > 0)
                throw new InvalidCheckpointException(indexPath, missing[0],
                    $"{missing.Count} tensor(s) listed in the index are not in their shard: {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}");
            return new TensorSet(files, map);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
