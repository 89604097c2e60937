using System.Text;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Quantization.BlockFormats;

namespace HymbaTools.Formats.Gguf;

/// <summary>
/// A GGUF file as weights for the reference forward pass: the config is rebuilt from hymba.* metadata, and
/// each HuggingFace tensor is reassembled from its stored tensors (in_proj from its Q/K/V/x/z blocks) and
/// dequantized to float32. Every stored tensor the layout needs must be present with the right shape.
/// </summary>
public sealed class GgufTensorSource : IHymbaTensorSource, IDisposable
{
    private readonly GgufFile _file;
    private readonly Dictionary<string, List<StoredTensor>> _bySource = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long[]> _shapes;

    private GgufTensorSource(GgufFile file, HymbaConfig config)
    {
        _file = file;
        Config = config;
        _shapes = HymbaTensorCatalog.For(config).ToDictionary(t => t.Name, t => t.Shape);
        var expected = HymbaStorageLayout.For(config);
        var problems = new List<string>();
        foreach (var s in expected)
        {
            if (!file.TryGetTensor(s.Name, out var info)) { problems.Add($"{s.Name}: missing"); continue; }
            if (!info.Shape.SequenceEqual(s.Shape)) problems.Add($"{s.Name}: shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", s.Shape)}]");
            else if (!BlockFormatRegistry.TryGet(info.Type, out _)) problems.Add($"{s.Name}: type {GgmlTypes.NameOf(info.Type)} cannot be dequantized by this tool");
            if (!_bySource.TryGetValue(s.SourceName, out var list)) _bySource[s.SourceName] = list = [];
            list.Add(s);
        }
        var known = expected.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        problems.AddRange(file.Tensors.Where(t => !known.Contains(t.Name)).Select(t => $"{t.Name}: unexpected tensor"));
        if (problems.Count > 0)
            throw new InvalidGgufException(file.Path, problems[0].Split(':')[0], $"{problems.Count} problem(s): {string.Join("; ", problems.Take(10))}");
    }

    public HymbaConfig Config { get; }
    public GgufFile File => _file;

    public static GgufTensorSource Open(string path)
    {
        var file = GgufFile.Open(path);
        try
        {
            System.Text.Json.Nodes.JsonObject json;
            try { json = HymbaGgufSchema.ToConfigJson(file); }
            catch (InvalidOperationException e) { throw new InvalidGgufException(path, "hymba.*", $"metadata value of the wrong type ({e.Message})"); }
            var config = HymbaConfig.Parse(Encoding.UTF8.GetBytes(json.ToJsonString()), path + " (hymba.* metadata)");
            return new GgufTensorSource(file, config);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _bySource.ContainsKey(name) || (name == HymbaTensorCatalog.LmHead && Config.TieWordEmbeddings);

    public IReadOnlyList<long> ShapeOf(string name) =>
        _shapes.TryGetValue(name, out var s) ? s : name == HymbaTensorCatalog.LmHead ? _shapes[HymbaTensorCatalog.EmbedTokens] : throw new KeyNotFoundException(name);

    public void CopyToFloat32(string name, Span<float> destination)
    {
        if (name == HymbaTensorCatalog.LmHead && Config.TieWordEmbeddings) name = HymbaTensorCatalog.EmbedTokens;
        foreach (var stored in _bySource[name])
        {
            if (!_file.TryGetTensor(stored.Name, out var info))
                throw new InvalidGgufException(_file.Path, stored.Name, "tensor missing");
            int cols = checked((int)stored.Columns);
            long offset = (stored.SourceRows?.Start ?? 0) * (long)cols;
            DequantizeRows(info, cols, 0, (int)(stored.ElementCount / cols), destination.Slice((int)offset, (int)stored.ElementCount));
        }
    }

    public void ReleaseResidentPages() => _file.ReleaseResidentPages();

    /// <summary>Dequantizes rows [firstRow, firstRow+count) of a stored tensor, row by row (thread-safe).</summary>
    public void DequantizeRows(GgufTensorInfo info, int cols, long firstRow, int count, Span<float> destination)
    {
        var format = BlockFormatRegistry.Get(info.Type);
        int rowBytes = checked((int)GgmlTypes.RowBytes(info.Type, cols));
        var data = _file.Data(info);
        for (int r = 0; r < count; r++)
            format.DequantizeRow(data.Slice(checked((int)((firstRow + r) * rowBytes)), rowBytes), destination.Slice(r * cols, cols));
    }

    public void Dispose() => _file.Dispose();
}
