using System.Text.Json;
using System.Text.Json.Nodes;
using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Model;

namespace HymbaTools.Merge;

/// <summary>
/// Imposes cross-layer KV sharing on a trained checkpoint: the given groups become the model's
/// kv_reuse_group (producer first, then consumers); layers that become consumers lose the K and V rows of
/// their in_proj and read their producer's post-RoPE K/V instead. The result is a normal HuggingFace
/// checkpoint (config.json updated, same dtype, tokenizer files copied).
/// </summary>
public static class KvMerge
{
    /// <summary>Parses "[[1,2],[3,4,5]]".</summary>
    public static int[][] ParseGroups(string text)
    {
        try
        {
            var groups = JsonSerializer.Deserialize<int[][]>(text);
            if (groups is null || groups.Length == 0 || groups.Any(g => g is null)) throw new JsonException("empty");
            return groups;
        }
        catch (JsonException)
        {
            throw new InvalidRequestException("--groups", $"'{text}' is not a JSON list of layer lists such as [[1,2],[3,4,5]]");
        }
    }

    /// <summary>
    /// Checks the groups against the model and returns the complete new kv_reuse_group: every layer at most
    /// once, indices in range, at least two layers per group, the producer before its consumers; layers that
    /// already are consumers stay consumers (their K/V weights are gone); a global layer cannot consume the
    /// K/V of a sliding layer (the producer's cache only keeps its window). Existing groups that the new ones
    /// do not touch are kept.
    /// </summary>
    public static int[][] Resolve(HymbaConfig config, int[][] requested)
    {
        var seen = new Dictionary<int, int>();
        for (int g = 0; g < requested.Length; g++)
        {
            var group = requested[g];
            if (group.Length < 2) throw new InvalidRequestException("--groups", $"group {g} [{string.Join(",", group)}] needs a producer and at least one consumer");
            foreach (int layer in group)
            {
                if (layer < 0 || layer >= config.NumLayers) throw new InvalidRequestException("--groups", $"layer {layer} in group {g} is out of range 0..{config.NumLayers - 1}");
                if (seen.TryGetValue(layer, out int other)) throw new InvalidRequestException("--groups", $"layer {layer} is in group {other} and group {g} (groups overlap)");
                seen[layer] = g;
            }
            int producer = group[0];
            if (!config.Layers[producer].OwnsKv)
                throw new InvalidRequestException("--groups", $"layer {producer} cannot produce K/V: it is already a consumer of layer {config.Layers[producer].KvSource} and has no K/V weights");
            foreach (int consumer in group.Skip(1))
            {
                if (consumer < producer) throw new InvalidRequestException("--groups", $"consumer {consumer} comes before its producer {producer} in group {g}");
                var c = config.Layers[consumer];
                var p = config.Layers[producer];
                if (c.Attention == AttentionKind.Global && p.Attention == AttentionKind.Sliding)
                    throw new InvalidRequestException("--groups", $"global layer {consumer} cannot consume the K/V of sliding-window layer {producer} (window {p.Window}): decoding keeps only the producer's window");
            }
        }
        // Existing groups the request does not touch are kept.
        var result = requested.Select(g => g.ToArray()).ToList();
        if (config.KvReuseGroups is { } existing)
            result.AddRange(existing.Where(group => !group.Any(seen.ContainsKey)).Select(group => group.ToArray()));
        // A consumer today has no K/V weights, so it must still be a consumer afterwards.
        var consumers = result.SelectMany(g => g.Skip(1)).ToHashSet();
        foreach (var layer in config.Layers.Where(l => !l.OwnsKv))
            if (!consumers.Contains(layer.Index))
                throw new InvalidRequestException("--groups", $"layer {layer.Index} is a consumer today (of layer {layer.KvSource}) and has no K/V weights: it must stay a consumer");
        return result.OrderBy(g => g[0]).ToArray();
    }

    public sealed record Result(string Directory, HymbaConfig Before, HymbaConfig After);

    /// <summary>Tokenizer and generation files carried over unchanged.</summary>
    private static readonly string[] CompanionFiles =
        ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "generation_config.json"];

    /// <summary>
    /// Writes the merged checkpoint into <paramref name="outputDirectory"/> (new, or empty, or replaced with
    /// <paramref name="force"/>), staged in a temporary directory and renamed into place when complete.
    /// </summary>
    public static Result Write(HymbaCheckpoint source, int[][] groups, string outputDirectory, bool force = false)
    {
        var before = source.Config;
        var resolved = Resolve(before, groups);
        var json = before.Json.DeepClone().AsObject();
        json["kv_reuse_group"] = new JsonArray(resolved.Select(g => (JsonNode)new JsonArray(g.Select(x => (JsonNode)x).ToArray())).ToArray());
        string configText = PythonStyleJson.Serialize(json);
        var after = HymbaConfig.Parse(System.Text.Encoding.UTF8.GetBytes(configText), Path.Combine(outputDirectory, CheckpointDirectory.ConfigFileName));
        if (Path.GetFullPath(outputDirectory).TrimEnd('/') == Path.GetFullPath(source.Files.Directory).TrimEnd('/'))
            throw new InvalidRequestException("-o", "the output directory must differ from the input checkpoint");
        string destination = OutputPaths.CheckDirectory(outputDirectory, "-o", force);

        var entries = new List<SafetensorsEntry>();
        var sourceOf = new Dictionary<string, (TensorView View, RowBlock[] Rows)>();
        foreach (var t in HymbaTensorCatalog.For(after))
        {
            var view = source.Get(t.Name);
            RowBlock[] rows = [new RowBlock(0, (int)view.RowCount)];
            if (t.Role == TensorRole.InProj)
            {
                // Keep Q, x and z (and K/V for owners) in the new layer's row order, taken from the old layout.
                var oldLayout = before.Layers[t.Layer].InProj;
                var newLayout = after.Layers[t.Layer].InProj;
                rows = newLayout.K.Length > 0 ? [oldLayout.Q, oldLayout.K, oldLayout.V, oldLayout.X, oldLayout.Z] : [oldLayout.Q, oldLayout.X, oldLayout.Z];
            }
            entries.Add(new SafetensorsEntry(t.Name, view.DType, t.Shape));
            sourceOf[t.Name] = (view, rows);
        }
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        OutputPaths.WriteDirectory(destination, force, directory =>
        {
            SafetensorsWriter.Write(Path.Combine(directory, CheckpointDirectory.SingleFileName), entries, metadata, (entry, stream) =>
            {
                var (view, rows) = sourceOf[entry.Name];
                long rowBytes = view.ByteLength / view.RowCount;
                foreach (var block in rows)
                    stream.Write(view.Bytes.Slice((int)(block.Start * rowBytes), (int)(block.Length * rowBytes)));
            });
            foreach (string file in CompanionFiles)
            {
                string from = Path.Combine(source.Files.Directory, file);
                if (File.Exists(from)) File.Copy(from, Path.Combine(directory, file));
            }
            AtomicFile.WriteAllText(Path.Combine(directory, CheckpointDirectory.ConfigFileName), configText);
        });
        return new Result(destination, before, after);
    }
}
