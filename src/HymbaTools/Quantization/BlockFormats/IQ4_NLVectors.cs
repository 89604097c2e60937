using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace HymbaTools.Quantization.BlockFormats;

/// <summary>
/// IQ4_NL for eight blocks at once, one block per vector lane. ggml's search accumulates its sums element by
/// element in float32 (Σw, Σwqx, Σwq² over j = 0..31), so summing within a block in vectors would round
/// differently; a lane per block keeps each block's own order exactly, and every other step (the nearest level,
/// the 15 candidate scales, the comparisons that pick one) is the same float32 operation per lane, so the bytes
/// equal <see cref="IQ4_NLFormat.QuantizeBlock"/>'s (NaN arising from overflow included). Groups holding NaN or
/// infinity in their input are declined, as is everything on machines without AVX2.
/// </summary>
internal static class IQ4_NLVectors
{
    public const int Lanes = 8;

    public static bool IsAccelerated => Avx2.IsSupported;

    /// <param name="x">8 blocks of 32 values, one after the other</param>
    /// <param name="y">8 blocks of 18 bytes</param>
    /// <param name="qw">importance for the 8 blocks, or empty</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool TryQuantize(ReadOnlySpan<float> x, Span<byte> y, ReadOnlySpan<float> qw)
    {
        if (!IsAccelerated || x.Length < 32 * Lanes || y.Length < 18 * Lanes || (!qw.IsEmpty && qw.Length < 32 * Lanes)) return false;
        // Element j of the eight blocks in one vector: X[j] lane k = x[32k + j].
        Span<Vector256<float>> X = stackalloc Vector256<float>[32];
        Span<Vector256<float>> W = stackalloc Vector256<float>[32];
        Span<float> lane = stackalloc float[Lanes];
        var finite = Vector256<int>.AllBitsSet;
        for (int j = 0; j < 32; j++)
        {
            for (int k = 0; k < Lanes; k++) lane[k] = x[32 * k + j];
            X[j] = Vector256.Create<float>(lane);
            finite &= Vector256.LessThan(X[j].AsInt32() & Vector256.Create(0x7fffffff), Vector256.Create(0x7f800000));
        }
        if (finite != Vector256<int>.AllBitsSet) return false;

        var levels = IQ4_NLFormat.Levels;
        var sigma2 = Vector256<float>.Zero;
        for (int j = 0; j < 32; j++) sigma2 += X[j] * X[j];
        sigma2 *= Vector256.Create(2f / 32);
        for (int j = 0; j < 32; j++)
        {
            if (qw.IsEmpty) { W[j] = X[j] * X[j]; continue; }
            for (int k = 0; k < Lanes; k++) lane[k] = qw[32 * k + j];
            W[j] = Vector256.Create<float>(lane) * Vector256.Sqrt(sigma2 + X[j] * X[j]);
        }

        // The first value of largest magnitude, with its sign (strictly greater replaces).
        var amax = Vector256<float>.Zero;
        var max = Vector256<float>.Zero;
        for (int j = 0; j < 32; j++)
        {
            var ax = Vector256.Abs(X[j]);
            var larger = Vector256.GreaterThan(ax, amax);
            amax = Vector256.ConditionalSelect(larger, ax, amax);
            max = Vector256.ConditionalSelect(larger, X[j], max);
        }
        var valid = Vector256.GreaterThanOrEqual(amax, Vector256.Create(QuantMath.GroupMaxEps));

        // Lanes that are not valid compute meaningless values (divisions by zero) that the final select drops.
        var d = -max / Vector256.Create((float)levels[0]);
        var (sumqx, sumq2) = Sums(X, W, Vector256<float>.One / d);
        d = Vector256.ConditionalSelect(Vector256.GreaterThan(sumq2, Vector256<float>.Zero), sumqx / sumq2, Vector256<float>.Zero);
        var best = d * sumqx;
        for (int itry = -IQ4_NLFormat.Tries; itry <= IQ4_NLFormat.Tries; itry++)
        {
            (sumqx, sumq2) = Sums(X, W, Vector256.Create((float)(itry + levels[0])) / max);
            var better = Vector256.GreaterThan(sumq2, Vector256<float>.Zero) & Vector256.GreaterThan(sumqx * sumqx, best * sumq2);
            d = Vector256.ConditionalSelect(better, sumqx / sumq2, d);
            best = Vector256.ConditionalSelect(better, d * sumqx, best);
        }
        var scale = Vector256.ConditionalSelect(valid, d, Vector256<float>.Zero);

        // The indices come from the float scale, not the stored fp16 one (as in ggml).
        var inverse = Vector256.ConditionalSelect(Vector256.Equals(scale, Vector256<float>.Zero), Vector256<float>.Zero, Vector256<float>.One / scale);
        Span<int> index = stackalloc int[32 * Lanes];   // [j, k]
        for (int j = 0; j < 32; j++) NearestLevel(inverse * X[j], out _).CopyTo(index.Slice(j * Lanes, Lanes));
        for (int k = 0; k < Lanes; k++)
        {
            var block = y.Slice(18 * k, 18);
            QuantMath.WriteHalf(block, scale.GetElement(k));
            for (int j = 0; j < 16; j++) block[2 + j] = (byte)(index[j * Lanes + k] | (index[(j + 16) * Lanes + k] << 4));
        }
        return true;
    }

    /// <summary>Σ w·q·x and Σ w·q² over j = 0..31 in that order, q the level nearest to id·x (per lane).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> SumQx, Vector256<float> SumQ2) Sums(ReadOnlySpan<Vector256<float>> X, ReadOnlySpan<Vector256<float>> W, Vector256<float> id)
    {
        var sumqx = Vector256<float>.Zero;
        var sumq2 = Vector256<float>.Zero;
        for (int j = 0; j < 32; j++)
        {
            NearestLevel(id * X[j], out var q);
            var wq = W[j] * q;
            sumqx += wq * X[j];
            sumq2 += wq * q;
        }
        return (sumqx, sumq2);
    }

    private static readonly Vector256<float> LowLevels = Vector256.Create(-127f, -104f, -83f, -65f, -49f, -35f, -22f, -10f);
    private static readonly Vector256<float> HighLevels = Vector256.Create(1f, 13f, 25f, 38f, 53f, 69f, 89f, 113f);

    /// <summary>
    /// ggml's best_index_int8 per lane: below the first level 0, above the last 15, NaN 15, else hi = the number of
    /// levels at or below v (what its bisection converges to) and the lower neighbour only when strictly nearer.
    /// Returns the index and, in <paramref name="level"/>, the level's value.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> NearestLevel(Vector256<float> v, out Vector256<float> level)
    {
        // Each comparison is all ones (-1) where the level is at or below v; the levels are kvalues_iq4nl.
        var count = -(AtOrBelow(-127f, v) + AtOrBelow(-104f, v) + AtOrBelow(-83f, v) + AtOrBelow(-65f, v)
                    + AtOrBelow(-49f, v) + AtOrBelow(-35f, v) + AtOrBelow(-22f, v) + AtOrBelow(-10f, v)
                    + AtOrBelow(1f, v) + AtOrBelow(13f, v) + AtOrBelow(25f, v) + AtOrBelow(38f, v)
                    + AtOrBelow(53f, v) + AtOrBelow(69f, v) + AtOrBelow(89f, v) + AtOrBelow(113f, v));
        var hi = Vector256.Min(Vector256.Max(count, Vector256<int>.One), Vector256.Create(15));
        var below = Level(hi - Vector256<int>.One);
        var above = Level(hi);
        var lower = Vector256.LessThan(v - below, above - v).AsInt32();
        var index = hi + lower;   // lower is -1 where the lower neighbour wins
        level = Vector256.ConditionalSelect(lower.AsSingle(), below, above);
        // NaN (from finite inputs whose squares overflow) fails every comparison of the bisection, which then ends on 15.
        var nan = ~Vector256.Equals(v, v);
        level = Vector256.ConditionalSelect(nan, Vector256.Create(113f), level);
        return Vector256.ConditionalSelect(nan.AsInt32(), Vector256.Create(15), index);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> AtOrBelow(float levelValue, Vector256<float> v) => Vector256.LessThanOrEqual(Vector256.Create(levelValue), v).AsInt32();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Level(Vector256<int> index)
    {
        var low = Avx2.PermuteVar8x32(LowLevels, index & Vector256.Create(7));
        var high = Avx2.PermuteVar8x32(HighLevels, index & Vector256.Create(7));
        return Vector256.ConditionalSelect(Vector256.GreaterThan(index, Vector256.Create(7)).AsSingle(), high, low);
    }
}
