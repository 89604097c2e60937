using System.Text.Json.Nodes;
using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Model;

namespace HymbaTools.Synthetic;

public sealed record RandomCheckpointOptions(CheckpointPreset Preset, ulong Seed = 0, SafetensorsDType DType = SafetensorsDType.BF16, int Shards = 1)
{
    /// <summary>Write config.json only (no weights): enough for `inspect` and cache-size planning.</summary>
    public bool ConfigOnly { get; init; }
}

/// <summary>
/// Writes a random-weight Hymba checkpoint in real HuggingFace layout. Weights follow the fixture recipe
/// (norm gains around 1, A_log = log(1..N) + noise as Mamba initialises it, dt bias = softplus^-1 of a
/// log-uniform step, scaled linear weights) so every component influences the output. Generation is
/// streamed per tensor in fixed-size chunks, each chunk with its own derived seed, so the bytes do not
/// depend on thread count and memory stays at a few chunks.
/// </summary>
public static partial class RandomCheckpointWriter
{
    private const int ChunkElements = 1 << 20;
    /// <summary>Safetensors metadata key naming the preset: marks weights as random ones written here, which `init` may replace.</summary>
    public const string InitMarker = "hymba_init";

    /// <summary>
    /// What `init DIR` replaces without --force: a directory holding nothing but a checkpoint's files (config.json,
    /// weights, index) whose weights all carry <see cref="InitMarker"/>, or config.json alone (--config-only).
    /// </summary>
    internal static OutputKind PreviousOutput { get; } = new("a checkpoint written by hymba init", IsPreviousOutput);

    private static bool IsPreviousOutput(string directory)
    {
        try
        {
            var names = Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).ToList();
            if (!names.Contains(CheckpointDirectory.ConfigFileName)) return false;
            foreach (string? name in names)
            {
                string path = Path.Combine(directory, name!);
                if (name == CheckpointDirectory.ConfigFileName || name == SafetensorsIndex.FileName) { if (!File.Exists(path)) return false; continue; }
                if (!(name == CheckpointDirectory.SingleFileName || ShardName().IsMatch(name!)) || !File.Exists(path)) return false;
                using var file = SafetensorsFile.Open(path);
                if (!file.Metadata.ContainsKey(InitMarker)) return false;
            }
            return true;
        }
        catch (Exception e) when (e is HymbaInputException or IOException or UnauthorizedAccessException) { return false; }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^model-\d{5}-of-\d{5}\.safetensors$")]
    private static partial System.Text.RegularExpressions.Regex ShardName();

    public static IReadOnlyList<string> Write(string directory, RandomCheckpointOptions options, IProgress<(long Done, long Total)>? progress = null)
    {
        if (!SafetensorsDTypes.IsFloatWeight(options.DType)) throw new ArgumentException("dtype must be F32, F16 or BF16", nameof(options));
        if (options.Shards < 1) throw new ArgumentOutOfRangeException(nameof(options), "shards must be >= 1");
        Directory.CreateDirectory(directory);

        string torchDtype = options.DType switch { SafetensorsDType.F32 => "float32", SafetensorsDType.F16 => "float16", _ => "bfloat16" };
        JsonObject configJson = options.Preset.ToConfigJson(torchDtype);
        string configText = PythonStyleJson.Serialize(configJson);
        var config = HymbaConfig.Parse(System.Text.Encoding.UTF8.GetBytes(configText), Path.Combine(directory, CheckpointDirectory.ConfigFileName));

        var catalog = HymbaTensorCatalog.For(config);
        var entries = catalog.Select(t => new SafetensorsEntry(t.Name, options.DType, t.Shape)).OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
        var byName = catalog.ToDictionary(t => t.Name);
        long total = entries.Sum(e => e.ByteLength);
        long done = 0;

        void WriteTensor(SafetensorsEntry entry, Stream stream)
        {
            WriteRandomTensor(byName[entry.Name], config, options, stream);
            done += entry.ByteLength;
            progress?.Report((done, total));
        }

        var written = new List<string>();
        string configPath = Path.Combine(directory, CheckpointDirectory.ConfigFileName);
        if (options.ConfigOnly)
        {
            AtomicFile.WriteAllText(configPath, configText);
            return [configPath];
        }
        var metadata = new Dictionary<string, string> { ["format"] = "pt", [InitMarker] = options.Preset.Name };
        if (options.Shards == 1)
        {
            string path = Path.Combine(directory, CheckpointDirectory.SingleFileName);
            SafetensorsWriter.Write(path, entries, metadata, WriteTensor);
            written.Add(path);
        }
        else
        {
            var shards = SplitIntoShards(entries, options.Shards);
            var weightMap = new JsonObject();
            for (int s = 0; s < shards.Count; s++)
            {
                string name = $"model-{s + 1:00000}-of-{shards.Count:00000}.safetensors";
                SafetensorsWriter.Write(Path.Combine(directory, name), shards[s], metadata, WriteTensor);
                foreach (var e in shards[s]) weightMap[e.Name] = name;
                written.Add(Path.Combine(directory, name));
            }
            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
            string indexPath = Path.Combine(directory, SafetensorsIndex.FileName);
            AtomicFile.WriteAllText(indexPath, PythonStyleJson.Serialize(index));
            written.Add(indexPath);
        }
        // config.json last: a directory whose writing failed half way is never mistaken for a checkpoint.
        AtomicFile.WriteAllText(configPath, configText);
        written.Add(configPath);
        return written;
    }

    /// <summary>Contiguous runs of the name-ordered tensors with roughly equal bytes; never an empty shard.</summary>
    private static List<List<SafetensorsEntry>> SplitIntoShards(List<SafetensorsEntry> entries, int shards)
    {
        shards = Math.Min(shards, entries.Count);
        long total = entries.Sum(e => e.ByteLength);
        var result = new List<List<SafetensorsEntry>> { new() };
        long accumulated = 0;
        for (int i = 0; i < entries.Count; i++)
        {
            int remainingEntries = entries.Count - i;
            int remainingShards = shards - result.Count;
            bool full = accumulated >= total * result.Count / shards;
            if (result[^1].Count > 0 && remainingShards > 0 && (full || remainingEntries == remainingShards)) result.Add(new());
            result[^1].Add(entries[i]);
            accumulated += entries[i].ByteLength;
        }
        return result;
    }

    private static void WriteRandomTensor(ExpectedTensor tensor, HymbaConfig config, RandomCheckpointOptions options, Stream stream)
    {
        var sample = Sampler(tensor, config);
        long count = tensor.ElementCount;
        int elementSize = SafetensorsDTypes.SizeOf(options.DType);
        long chunks = (count + ChunkElements - 1) / ChunkElements;
        int parallel = Math.Max(1, HymbaTools.Common.ComputeThreads.Count);
        var floats = new float[parallel][];
        var bytes = new byte[parallel][];
        for (int p = 0; p < parallel; p++) { floats[p] = new float[ChunkElements]; bytes[p] = new byte[ChunkElements * elementSize]; }

        for (long first = 0; first < chunks; first += parallel)
        {
            Interruption.ThrowIfRequested();
            int batch = (int)Math.Min(parallel, chunks - first);
            Parallel.For(0, batch, p =>
            {
                long chunk = first + p;
                long start = chunk * ChunkElements;
                int n = (int)Math.Min(ChunkElements, count - start);
                var rng = new DeterministicRandom(DeterministicRandom.Derive(options.Seed, tensor.Name, chunk));
                var f = floats[p].AsSpan(0, n);
                for (int i = 0; i < n; i++) f[i] = sample(start + i, ref rng);
                FloatEncoding.Encode(f, bytes[p].AsSpan(0, n * elementSize), options.DType);
            });
            for (int p = 0; p < batch; p++)
            {
                long start = (first + p) * ChunkElements;
                int n = (int)Math.Min(ChunkElements, count - start);
                stream.Write(bytes[p], 0, n * elementSize);
            }
        }
    }

    private delegate float ElementSampler(long index, ref DeterministicRandom rng);

    /// <summary>The distribution of each tensor role (the recipe of the golden fixtures).</summary>
    private static ElementSampler Sampler(ExpectedTensor t, HymbaConfig c)
    {
        long fanIn = t.Shape.Length >= 2 ? t.Shape[^1] : 1;
        float linearStd = (float)(0.7 / Math.Sqrt(fanIn));
        float embedStd = (float)Math.Min(0.3, 2.4 / Math.Sqrt(c.HiddenSize));
        float dtBound = (float)(1.0 / Math.Sqrt(c.DtRank));
        int n = c.SsmStateSize;
        return t.Role switch
        {
            TensorRole.TokenEmbedding or TensorRole.LmHead => (long _, ref DeterministicRandom r) => (float)r.NextNormal() * embedStd,
            TensorRole.MetaTokens => (long _, ref DeterministicRandom r) => (float)r.NextNormal() * 0.4f,
            TensorRole.InputNorm or TensorRole.PreMlpNorm or TensorRole.FinalNorm or TensorRole.FusionNormAttention or TensorRole.FusionNormSsm
                or TensorRole.DtNorm or TensorRole.BNorm or TensorRole.CNorm => (long _, ref DeterministicRandom r) => 1f + (float)r.NextNormal() * 0.15f,
            TensorRole.ALog => (long i, ref DeterministicRandom r) => (float)(Math.Log(i % n + 1) + r.NextNormal() * 0.1),
            TensorRole.D => (long _, ref DeterministicRandom r) => 1f + (float)r.NextNormal() * 0.2f,
            TensorRole.DtProjBias => (long _, ref DeterministicRandom r) =>
            {
                double dt = Math.Exp(Math.Log(1e-3) + r.NextDouble() * (Math.Log(1e-1) - Math.Log(1e-3)));
                return (float)(dt + Math.Log(1.0 - Math.Exp(-dt))); // softplus^-1(dt)
            }
            ,
            TensorRole.DtProjWeight => (long _, ref DeterministicRandom r) => (float)(r.NextDouble() * 2 - 1) * dtBound,
            TensorRole.Conv1dWeight => (long _, ref DeterministicRandom r) => (float)(r.NextDouble() * 2 - 1) * 0.5f,
            TensorRole.Conv1dBias or TensorRole.InProjBias or TensorRole.OutProjBias => (long _, ref DeterministicRandom r) => (float)r.NextNormal() * 0.1f,
            _ => (long _, ref DeterministicRandom r) => (float)r.NextNormal() * linearStd,
        };
    }
}
