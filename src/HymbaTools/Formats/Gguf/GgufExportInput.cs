using HymbaTools.Checkpoints;
using HymbaTools.Model;
using HymbaTools.Quantization;

namespace HymbaTools.Formats.Gguf;

/// <summary>
/// What a GGUF export reads, seen as the stored tensors of the single-file layout (<see cref="HymbaStorageLayout"/>):
/// a HuggingFace checkpoint (each stored tensor is a row block of a float tensor) or a GGUF file written by this
/// tool (each stored tensor is there under its own name, maybe quantized already).
/// </summary>
internal interface IGgufExportInput
{
    HymbaConfig Config { get; }
    /// <summary>general.name when the caller gives none.</summary>
    string DefaultModelName { get; }
    /// <summary>Files whose names and sha256 the output records as its provenance.</summary>
    IReadOnlyList<string> ProvenanceFiles { get; }
    /// <summary>The Hub repository and commit the input came from, when known (recorded as general.source.huggingface.*).</summary>
    HubSnapshot? Hub { get; }
    /// <summary>Writes the tokenizer.* keys, when the input has a tokenizer.</summary>
    void AddTokenizer(GgufWriter writer);
    /// <summary>The GGUF type a GGUF input stores the tensor in; null for a checkpoint (float tensors, looked up only when written).</summary>
    GgmlType? StoredType(StoredTensor tensor);
    /// <summary>Reads rows of a stored tensor as float32 (the returned source is thread-safe; asked once per tensor, so lookups happen once).</summary>
    RowSource Rows(StoredTensor tensor);
    /// <summary>Writes the tensor's bytes unchanged (only asked when the output type equals <see cref="StoredType"/> and the input is GGUF).</summary>
    bool TryCopyStoredBytes(StoredTensor tensor, Stream output);
    /// <summary>Lets go of the tensor's mapped pages once it has been written (resident memory stays at one tensor).</summary>
    void Release(StoredTensor tensor);
    /// <summary>"file: tensor" as warnings name where a value sits; row blocks of one source tensor share it.</summary>
    string Location(StoredTensor tensor);
}

/// <summary>A HuggingFace checkpoint as export input.</summary>
internal sealed class CheckpointExportInput(HymbaCheckpoint checkpoint) : IGgufExportInput
{
    public HymbaConfig Config => checkpoint.Config;
    /// <summary>The directory's name, or the repository's for a Hub snapshot (whose directory is named by its commit).</summary>
    public string DefaultModelName => checkpoint.Files.Hub?.Name ?? Path.GetFileName(checkpoint.Files.Directory.TrimEnd('/'));

    public HubSnapshot? Hub => checkpoint.Files.Hub;

    public IReadOnlyList<string> ProvenanceFiles =>
        new[] { checkpoint.Files.ConfigPath }.Concat(checkpoint.Tensors.Files.Select(f => f.Path))
            .Concat(checkpoint.Files.Layout == WeightLayout.Sharded ? [checkpoint.Files.WeightsPath!] : []).ToList();

    public void AddTokenizer(GgufWriter writer) => GgufTokenizerMetadata.AddIfPresent(writer, checkpoint.Files.Directory, checkpoint.Config);

    public GgmlType? StoredType(StoredTensor tensor) => null;

    public RowSource Rows(StoredTensor tensor)
    {
        var view = checkpoint.Get(tensor.SourceName);
        long cols = tensor.Columns, blockStart = tensor.SourceRows?.Start ?? 0;
        return (firstRow, count, destination) => view.CopyElementsToFloat32((blockStart + firstRow) * cols, count * cols, destination);
    }

    /// <summary>Never: a checkpoint's row blocks are always converted (bf16/f16/f32 to the output type is exact or rounds once).</summary>
    public bool TryCopyStoredBytes(StoredTensor tensor, Stream output) => false;

    public void Release(StoredTensor tensor) => checkpoint.Get(tensor.SourceName).ReleaseResidentPages();

    public string Location(StoredTensor tensor)
    {
        var view = checkpoint.Get(tensor.SourceName);
        return $"{Path.GetFileName(view.FilePath)}: {view.Name}";
    }
}

/// <summary>A GGUF file (f32/f16/bf16, or quantized for requantizing) as export input.</summary>
internal sealed class GgufFileExportInput(GgufTensorSource source) : IGgufExportInput
{
    public HymbaConfig Config => source.Config;

    public string DefaultModelName =>
        source.File.TryGet("general.name", out var name) && name.Type == GgufValueType.String ? name.AsString : Path.GetFileNameWithoutExtension(source.File.Path);

    public IReadOnlyList<string> ProvenanceFiles => [source.File.Path];

    /// <summary>The snapshot the file sits in, else the repository its own metadata names (carried over).</summary>
    public HubSnapshot? Hub
    {
        get
        {
            if (HubSnapshot.FromDirectory(Path.GetDirectoryName(Path.GetFullPath(source.File.Path))!) is { } snapshot) return snapshot;
            return source.File.TryGet(GgufConstants.SourceHubRepositoryKey, out var repository) && repository.Type == GgufValueType.String
                   && source.File.TryGet(GgufConstants.SourceHubRevisionKey, out var revision) && revision.Type == GgufValueType.String
                ? new HubSnapshot(repository.AsString, revision.AsString, "")
                : null;
        }
    }

    /// <summary>The input's tokenizer.* keys, carried over as they are (the special token ids come from the config, written already).</summary>
    public void AddTokenizer(GgufWriter writer)
    {
        foreach (var (key, value) in source.File.Metadata.Where(kv => kv.Key.StartsWith("tokenizer.", StringComparison.Ordinal) && !writer.Has(kv.Key)))
            writer.Add(key, value);
    }

    public GgmlType? StoredType(StoredTensor tensor) => Info(tensor).Type;

    public RowSource Rows(StoredTensor tensor)
    {
        var info = Info(tensor);
        int cols = checked((int)tensor.Columns);
        return (firstRow, count, destination) => source.DequantizeRows(info, cols, firstRow, count, destination);
    }

    public bool TryCopyStoredBytes(StoredTensor tensor, Stream output)
    {
        output.Write(source.File.Data(Info(tensor)));
        return true;
    }

    public void Release(StoredTensor tensor) => source.File.ReleaseResidentPages();

    public string Location(StoredTensor tensor) => $"{Path.GetFileName(source.File.Path)}: {tensor.Name}";

    private GgufTensorInfo Info(StoredTensor tensor) =>
        source.File.TryGetTensor(tensor.Name, out var info) ? info : throw new InvalidGgufException(source.File.Path, tensor.Name, "tensor missing");
}
