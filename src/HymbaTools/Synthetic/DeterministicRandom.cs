namespace HymbaTools.Synthetic;

/// <summary>
/// SplitMix64: tiny, fast and fully specified, so generated checkpoints are byte-identical across
/// machines and .NET versions (System.Random's algorithm is not a stable contract).
/// </summary>
internal struct DeterministicRandom(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Standard normal by Box-Muller (one value per call; simple beats fast here).</summary>
    public double NextNormal()
    {
        double u1 = 1.0 - NextDouble();
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>A stream seed from a base seed and a name (FNV-1a over the name's UTF-16 code units).</summary>
    public static ulong Derive(ulong seed, string name, long index = 0)
    {
        ulong h = 14695981039346656037UL ^ seed;
        foreach (char c in name) { h ^= c; h *= 1099511628211UL; }
        h ^= (ulong)index;
        h *= 1099511628211UL;
        var r = new DeterministicRandom(h);
        return r.NextUInt64();
    }
}
