using HymbaTools.Checkpoints;

namespace HymbaTools.Model;

/// <summary>Parameter and byte counts of a checkpoint, derived from the catalog (and the stored dtypes when weights exist).</summary>
public sealed record ModelFootprint(
    long ParameterCount,
    IReadOnlyDictionary<ParameterComponent, long> ByComponent,
    IReadOnlyDictionary<string, long> BytesByDType,
    int TensorCount)
{
    /// <summary>
    /// Counts the elements of every stored tensor (a tied lm_head once, as the embedding). When the
    /// checkpoint has weights the stored tensors are counted (a redundantly stored tied head too); otherwise
    /// the catalog derived from config.json.
    /// </summary>
    public static ModelFootprint Of(HymbaConfig config, TensorSet? tensors = null)
    {
        var catalog = HymbaTensorCatalog.For(config);
        var byComponent = Enum.GetValues<ParameterComponent>().ToDictionary(c => c, _ => 0L);
        long total = 0;
        foreach (var t in catalog)
            foreach (var (component, n) in HymbaTensorCatalog.Components(t, config))
            {
                byComponent[component] += n;
                total += n;
            }

        var bytes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        int count = catalog.Count;
        if (tensors is { Count: > 0 })
        {
            count = tensors.Count;
            foreach (var t in tensors.ByName.Values)
            {
                string key = SafetensorsDTypes.NameOf(t.DType);
                bytes[key] = bytes.GetValueOrDefault(key) + t.ByteLength;
                if (t.Name == HymbaTensorCatalog.LmHead && config.TieWordEmbeddings)
                {
                    byComponent[ParameterComponent.LmHead] += t.ElementCount;
                    total += t.ElementCount;
                }
            }
        }
        return new ModelFootprint(total, byComponent, bytes, count);
    }
}
