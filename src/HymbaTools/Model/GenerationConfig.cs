using System.Text.Json;
using HymbaTools.Common;

namespace HymbaTools.Model;

/// <summary>
/// A checkpoint's generation_config.json (HuggingFace): special token ids and the search defaults its authors chose.
/// Every field is optional; the file itself is too (<see cref="Load"/> gives an empty one when it is absent).
/// </summary>
public sealed record GenerationConfig
{
    public const string FileName = "generation_config.json";

    public int? BosTokenId { get; init; }
    /// <summary>One id or several (HuggingFace allows a list); empty when not given.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    public int? MaxLength { get; init; }
    public bool? DoSample { get; init; }
    public double? Temperature { get; init; }
    public int? TopK { get; init; }
    public double? TopP { get; init; }
    public double? RepetitionPenalty { get; init; }

    public static GenerationConfig Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return new GenerationConfig();
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new InvalidConfigException(path, "", $"cannot read ({e.Message})"); }
        using var doc = JsonInput.Document(bytes, 16, problem => new InvalidConfigException(path, "", problem));
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidConfigException(path, "$", "expected an object");
        var r = new JsonFieldReader(path, doc.RootElement);
        int? Int(string name, int min) => r.Has(name) && !r.IsNull(name) ? r.Int(name, min) : null;
        double? Positive(string name)
        {
            if (!r.Has(name) || r.IsNull(name)) return null;
            double v = r.Double(name);
            return v >= 0 ? v : throw r.Error(name, $"is {v}, expected a number >= 0");
        }
        IReadOnlyList<int> eos = !r.Has("eos_token_id") || r.IsNull("eos_token_id") ? []
            : r.Required("eos_token_id").ValueKind == JsonValueKind.Array ? r.IntArray("eos_token_id") : [r.Int("eos_token_id", 0)];
        if (eos.FirstOrDefault(id => id < 0, 0) is < 0 and var negative) throw r.Error("eos_token_id", $"holds {negative}, expected token ids >= 0");
        double? topP = Positive("top_p");
        if (topP is 0 or > 1) throw r.Error("top_p", $"is {topP}, expected 0 < top_p <= 1");
        return new GenerationConfig
        {
            BosTokenId = Int("bos_token_id", 0),
            EosTokenIds = eos,
            PadTokenId = Int("pad_token_id", 0),
            MaxLength = Int("max_length", 1),
            DoSample = r.Has("do_sample") && !r.IsNull("do_sample") ? r.Bool("do_sample") : null,
            Temperature = Positive("temperature"),
            TopK = Int("top_k", 0),
            TopP = topP,
            RepetitionPenalty = Positive("repetition_penalty"),
        };
    }
}
