namespace HymbaTools.Model;

/// <summary>
/// Where the reference forward pass gets its weights from: a HuggingFace checkpoint, a GGUF file
/// (dequantized), or a merged checkpoint in memory. Names are the HuggingFace state-dict names of the
/// catalog; a tied lm_head resolves to the embedding.
/// </summary>
public interface IHymbaTensorSource
{
    HymbaConfig Config { get; }
    bool Contains(string name);
    IReadOnlyList<long> ShapeOf(string name);
    /// <summary>Writes the tensor as float32 (row-major, HuggingFace shape) into destination.</summary>
    void CopyToFloat32(string name, Span<float> destination);

    /// <summary>
    /// Tells a memory-mapped source that a streaming pass is done with what it read so far: the mapped pages stop
    /// counting toward the process's resident memory (reading again is still correct). Sources in memory ignore it.
    /// </summary>
    void ReleaseResidentPages() { }
}
