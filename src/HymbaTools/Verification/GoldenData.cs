using HymbaTools.Checkpoints;
using HymbaTools.Common;

namespace HymbaTools.Verification;

/// <summary>A full-forward reference case: ids [B, T] and logits [B, T, V].</summary>
public sealed record GoldenForwardCase(string Name, long[][] InputIds, float[] Logits, int Vocab);

/// <summary>
/// A greedy-decoding reference case: the prompt, the generated ids, the official generate()'s per-step
/// logits and the full-forward logits at the same positions (step 0 = prefill's last position).
/// </summary>
public sealed record GoldenDecodeCase(string Name, long[] PromptIds, long[] GeneratedIds, float[]? StepLogits, float[]? FullForwardLogits, int Vocab);

/// <summary>
/// Golden logits in the fixtures' safetensors layout (<c>&lt;case&gt;.input_ids</c> I64 [B,T] with
/// <c>&lt;case&gt;.logits</c> F32 [B,T,V]; <c>&lt;g&gt;.prompt_ids</c>, <c>.generated_ids</c>, <c>.step_logits</c>,
/// <c>.full_forward_logits</c> for decode cases). Shapes are cross-checked before anything is read.
/// </summary>
public sealed class GoldenData
{
    public required string Path { get; init; }
    public required IReadOnlyList<GoldenForwardCase> ForwardCases { get; init; }
    public required IReadOnlyList<GoldenDecodeCase> DecodeCases { get; init; }

    public static GoldenData Load(string path, int expectedVocab)
    {
        using var file = SafetensorsFile.Open(path);
        var forward = new List<GoldenForwardCase>();
        var decode = new List<GoldenDecodeCase>();
        var names = file.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);

        TensorView Get(string name, SafetensorsDType dtype, int rank)
        {
            if (!file.TryGetTensor(name, out var t)) throw new InvalidCheckpointException(path, name, "missing");
            if (t.DType != dtype) throw new InvalidCheckpointException(path, name, $"dtype {SafetensorsDTypes.NameOf(t.DType)}, expected {SafetensorsDTypes.NameOf(dtype)}");
            if (t.Rank != rank) throw new InvalidCheckpointException(path, name, $"rank {t.Rank}, expected {rank}");
            return t;
        }
        float[] Logits(string name, long batch, long tokens)
        {
            var t = Get(name, SafetensorsDType.F32, 3);
            if (t.Shape[0] != batch || t.Shape[1] != tokens || t.Shape[2] != expectedVocab)
                throw new InvalidCheckpointException(path, name, $"shape {ShapeMath.Format(t.Shape)}, expected [{batch}, {tokens}, {expectedVocab}] (vocab of the model)");
            return t.ToFloat32Array();
        }
        long[][] Ids(string name)
        {
            var t = Get(name, SafetensorsDType.I64, 2);
            var flat = t.ToInt64Array();
            long rows = t.Shape[0], cols = t.Shape[1];
            return Enumerable.Range(0, (int)rows).Select(r => flat.AsSpan((int)(r * cols), (int)cols).ToArray()).ToArray();
        }

        foreach (string name in names.Where(n => n.EndsWith(".input_ids", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            string c = name[..^".input_ids".Length];
            var ids = Ids(name);
            if (!names.Contains(c + ".logits")) throw new InvalidCheckpointException(path, c + ".logits", "missing (every <case>.input_ids needs <case>.logits)");
            forward.Add(new GoldenForwardCase(c, ids, Logits(c + ".logits", ids.Length, ids[0].Length), expectedVocab));
        }
        foreach (string name in names.Where(n => n.EndsWith(".generated_ids", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            string g = name[..^".generated_ids".Length];
            var generated = Ids(name);
            var prompt = Ids(g + ".prompt_ids");
            if (generated.Length != 1 || prompt.Length != 1) throw new InvalidCheckpointException(path, name, "decode cases must have batch 1");
            int steps = generated[0].Length;
            decode.Add(new GoldenDecodeCase(g, prompt[0], generated[0],
                names.Contains(g + ".step_logits") ? Logits(g + ".step_logits", 1, steps) : null,
                names.Contains(g + ".full_forward_logits") ? Logits(g + ".full_forward_logits", 1, steps) : null, expectedVocab));
        }
        if (forward.Count == 0 && decode.Count == 0)
            throw new InvalidCheckpointException(path, "", "no golden cases (expected tensors named <case>.input_ids and <case>.logits)");
        return new GoldenData { Path = path, ForwardCases = forward, DecodeCases = decode };
    }
}
