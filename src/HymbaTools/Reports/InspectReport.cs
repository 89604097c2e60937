using HymbaTools.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using HymbaTools.Model;

namespace HymbaTools.Reports;

/// <summary>What `hymba inspect` shows about a checkpoint: config summary, layer plan, parameter and byte counts, cache sizes.</summary>
public sealed record InspectReport(
    string Source, HymbaConfig Config, ModelFootprint Footprint, bool HasWeights, string WeightLayout,
    IReadOnlyList<long> SequenceLengths, IReadOnlyList<string> Warnings)
{
    /// <summary>Container facts shown for single-file artifacts (GGUF: version, alignment, general.* keys ...).</summary>
    public IReadOnlyList<(string Key, string Value)> Container { get; init; } = [];
    /// <summary>The Hub repository and commit when the checkpoint is a snapshot in the local HuggingFace cache.</summary>
    public Checkpoints.HubSnapshot? Hub { get; init; }
    public static readonly long[] DefaultSequenceLengths = [1024, 8192, 32768];

    public static InspectReport For(HymbaCheckpoint checkpoint, IReadOnlyList<long>? sequenceLengths = null) => new(
        checkpoint.Files.Directory, checkpoint.Config, ModelFootprint.Of(checkpoint.Config, checkpoint.Tensors), checkpoint.HasWeights,
        checkpoint.Files.Layout.ToString(), sequenceLengths is { Count: > 0 } ? sequenceLengths : DefaultSequenceLengths, checkpoint.Warnings)
    {
        Hub = checkpoint.Files.Hub,
    };

    private static string Mb(long bytes) => (bytes / 1e6).ToString("F2", CultureInfo.InvariantCulture) + " MB";

    /// <summary>
    /// A value a GGUF file stored as float32 (rms_norm_eps) reads back as a double such as 9.999999974752427E-07:
    /// such a value is printed as the float32 it is, in its shortest round-trip form (1E-06); any other as the double.
    /// </summary>
    internal static bool IsFloat32(double value) => (double)(float)value == value;

    internal static string Shortest(double value) =>
        IsFloat32(value) ? ((float)value).ToString("R", CultureInfo.InvariantCulture) : value.ToString("R", CultureInfo.InvariantCulture);

    public string ToText()
    {
        var c = Config;
        var sb = new StringBuilder();
        sb.Append($"Hymba checkpoint {Source}\n");
        if (Hub is { } hub) sb.Append($"  Hub: {hub.RepoId} at commit {hub.Commit} (local HuggingFace cache)\n");
        sb.Append($"  weights: {(HasWeights ? WeightLayout : "none (config.json only: figures derived from the config)")}\n\n");
        if (Container.Count > 0)
        {
            var container = new TextTable("container", "value");
            foreach (var (k, v) in Container) container.Add(k, v);
            sb.Append(container).Append('\n');
        }
        sb.Append("Config\n");
        var cfg = new TextTable("field", "value")
            .Add("layers", c.NumLayers)
            .Add("hidden size d", c.HiddenSize)
            .Add("query heads / KV heads", $"{c.NumHeads} / {c.NumKvHeads} (GQA group {c.GqaGroupSize})")
            .Add("Q/K head dim, V head dim", $"{c.HeadDim}, {c.VHeadDim}")
            .Add("Mamba inner d_in", c.DInner)
            .Add("SSM state N, dt rank, conv kernel", $"{c.SsmStateSize}, {c.DtRank}{(c.DtRankIsAuto ? " (auto)" : "")}, {c.ConvKernel}")
            .Add("MLP width", c.IntermediateSize)
            .Add("vocabulary", c.VocabSize)
            .Add("meta tokens", c.NumMemoryTokens)
            .Add("sliding window", c.SlidingWindow?.ToString(CultureInfo.InvariantCulture) ?? "none (all layers global)")
            .Add("RoPE", c.Rope ? $"{c.RopeType}, base {c.RopeBase.ToString("R", CultureInfo.InvariantCulture)}" : "off")
            .Add("RMSNorm eps", Shortest(c.RmsNormEps))
            .Add("tied embeddings", c.TieWordEmbeddings ? "yes" : "no");
        sb.Append(cfg).Append('\n');

        sb.Append("Layers\n");
        var layers = new TextTable("layer", "attention", "window", "KV role", "in_proj rows", "blocks Q | K | V | x | z");
        foreach (var l in c.Layers)
            layers.Add(l.Index, l.Attention == AttentionKind.Global ? "global" : "sliding", l.Window?.ToString(CultureInfo.InvariantCulture) ?? "-",
                l.KvRole(c.Layers), l.InProj.Rows, $"{l.InProj.Q} | {l.InProj.K} | {l.InProj.V} | {l.InProj.X} | {l.InProj.Z}");
        sb.Append(layers).Append('\n');

        sb.Append($"Parameters: {Footprint.ParameterCount.ToString("N0", CultureInfo.InvariantCulture)} ({Footprint.TensorCount} tensors)\n");
        var parameters = new TextTable("component", "parameters", "share");
        foreach (var (component, n) in Footprint.ByComponent.Where(kv => kv.Value > 0))
            parameters.Add(ComponentName(component), n, (100.0 * n / Footprint.ParameterCount).ToString("F2", CultureInfo.InvariantCulture) + "%");
        sb.Append(parameters).Append('\n');

        if (Footprint.BytesByDType.Count > 0)
        {
            var bytes = new TextTable("dtype", "bytes");
            foreach (var (dtype, n) in Footprint.BytesByDType) bytes.Add(dtype, n);
            sb.Append("Stored bytes by dtype\n").Append(bytes).Append('\n');
        }

        sb.Append("Inference cache (").Append(CacheSize.Convention).Append(")\n");
        var cache = new TextTable("tokens S", "as configured", "K/V", "SSM+conv", "without KV sharing", "without sharing or windows");
        foreach (long s in SequenceLengths)
        {
            var b = CacheSize.Compute(c, s);
            cache.Add(s, $"{b.Total:N0} ({Mb(b.Total)})", b.KvBytes, b.SsmStateBytes + b.ConvStateBytes,
                Mb(CacheSize.Compute(c, s, CacheSize.Variant.NoKvSharing).Total),
                Mb(CacheSize.Compute(c, s, CacheSize.Variant.NoSharingAllGlobal).Total));
        }
        sb.Append(cache);
        if (Warnings.Count > 0)
        {
            sb.Append("\nWarnings\n");
            foreach (var w in Warnings) sb.Append("  ").Append(w).Append('\n');
        }
        return sb.ToString();
    }

    public static string ComponentName(ParameterComponent c) => c switch
    {
        ParameterComponent.Embeddings => "token embeddings",
        ParameterComponent.LmHead => "lm_head (untied)",
        ParameterComponent.MetaTokens => "meta tokens",
        ParameterComponent.AttentionQ => "attention Q rows",
        ParameterComponent.AttentionK => "attention K rows",
        ParameterComponent.AttentionV => "attention V rows",
        ParameterComponent.Ssm => "SSM (x/z rows, conv, x_proj, dt_proj, A, D, inner norms)",
        ParameterComponent.OutProj => "shared out_proj",
        ParameterComponent.Mlp => "MLP",
        ParameterComponent.Norms => "norms (layer, fusion, final)",
        _ => c.ToString(),
    };

    public void WriteJson(Stream stream)
    {
        var c = Config;
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("source", Source);
        if (Hub is { } hub)
        {
            w.WriteStartObject("hub");
            w.WriteString("repository", hub.RepoId);
            w.WriteString("revision", hub.Commit);
            w.WriteEndObject();
        }
        w.WriteString("model_type", c.ModelType);
        w.WriteBoolean("has_weights", HasWeights);
        w.WriteString("weight_layout", WeightLayout);
        w.WriteNumber("num_layers", c.NumLayers);
        w.WriteNumber("hidden_size", c.HiddenSize);
        w.WriteNumber("num_attention_heads", c.NumHeads);
        w.WriteNumber("num_key_value_heads", c.NumKvHeads);
        w.WriteNumber("head_dim", c.HeadDim);
        w.WriteNumber("v_head_dim", c.VHeadDim);
        w.WriteNumber("d_inner", c.DInner);
        w.WriteNumber("dt_rank", c.DtRank);
        w.WriteBoolean("dt_rank_auto", c.DtRankIsAuto);
        w.WriteNumber("gqa_group_size", c.GqaGroupSize);
        w.WriteNumber("ssm_state_size", c.SsmStateSize);
        w.WriteNumber("conv_kernel", c.ConvKernel);
        w.WriteNumber("intermediate_size", c.IntermediateSize);
        w.WriteNumber("vocab_size", c.VocabSize);
        w.WriteNumber("num_memory_tokens", c.NumMemoryTokens);
        if (c.SlidingWindow is { } win) w.WriteNumber("sliding_window", win); else w.WriteNull("sliding_window");
        w.WriteBoolean("rope", c.Rope);
        w.WriteString("rope_type", c.RopeType);
        w.WriteNumber("rope_base", c.RopeBase);
        if (IsFloat32(c.RmsNormEps)) w.WriteNumber("rms_norm_eps", (float)c.RmsNormEps); else w.WriteNumber("rms_norm_eps", c.RmsNormEps);
        w.WriteBoolean("tie_word_embeddings", c.TieWordEmbeddings);
        w.WriteNumber("parameter_count", Footprint.ParameterCount);
        w.WriteNumber("tensor_count", Footprint.TensorCount);
        w.WriteStartObject("parameters_by_component");
        foreach (var (component, n) in Footprint.ByComponent) w.WriteNumber(JsonNamingPolicy.SnakeCaseLower.ConvertName(component.ToString()), n);
        w.WriteEndObject();
        w.WriteStartObject("bytes_by_dtype");
        foreach (var (dtype, n) in Footprint.BytesByDType) w.WriteNumber(dtype, n);
        w.WriteEndObject();
        w.WriteStartArray("layers");
        foreach (var l in c.Layers)
        {
            w.WriteStartObject();
            w.WriteNumber("index", l.Index);
            w.WriteString("attention", l.Attention == AttentionKind.Global ? "global" : "sliding");
            if (l.Window is { } lw) w.WriteNumber("window", lw); else w.WriteNull("window");
            w.WriteNumber("kv_source", l.KvSource);
            w.WriteBoolean("owns_kv", l.OwnsKv);
            w.WriteNumber("in_proj_rows", l.InProj.Rows);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteString("cache_convention", CacheSize.Convention);
        WriteCache(w, "cache_bytes", CacheSize.Variant.AsConfigured);
        WriteCache(w, "cache_bytes_without_kv_sharing", CacheSize.Variant.NoKvSharing);
        WriteCache(w, "cache_bytes_without_sharing_or_windows", CacheSize.Variant.NoSharingAllGlobal);
        if (Container.Count > 0)
        {
            w.WriteStartObject("container");
            foreach (var (k, v) in Container) w.WriteString(k, v);
            w.WriteEndObject();
        }
        w.WriteStartArray("warnings");
        foreach (var warning in Warnings) w.WriteStringValue(warning);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private void WriteCache(Utf8JsonWriter w, string name, CacheSize.Variant variant)
    {
        w.WriteStartObject(name);
        foreach (long s in SequenceLengths) w.WriteNumber(s.ToString(CultureInfo.InvariantCulture), CacheSize.Compute(Config, s, variant).Total);
        w.WriteEndObject();
    }
}
