using System.Buffers.Binary;
using System.Text;

namespace HymbaTools.Tests.Fuzzing;

/// <summary>
/// Deterministic mutations of a valid input, aimed at what readers of binary and JSON formats get wrong: bit
/// flips, truncation, length and count fields set huge, negative or off by one, duplicated and reordered runs,
/// invalid UTF-8, NaN/Inf payloads and deep JSON nesting. The same seed gives the same mutation.
/// </summary>
public static class Mutator
{
    public const int Kinds = 12;

    public static (byte[] Bytes, string Description) Mutate(byte[] input, int seed)
    {
        var rng = new Random(seed);
        var b = (byte[])input.Clone();
        int kind = rng.Next(Kinds);
        int at = b.Length == 0 ? 0 : rng.Next(b.Length);
        switch (kind)
        {
            case 0:
                for (int i = 0, n = 1 + rng.Next(8); i < n && b.Length > 0; i++) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return (b, "bit flips");
            case 1:
                int keep = b.Length == 0 ? 0 : rng.Next(b.Length);
                return (b[..keep], $"truncated to {keep} bytes");
            case 2:
                // An 8-byte little-endian field near the start (lengths and counts live there) set to a hostile value.
                int field = Math.Min(Math.Max(0, b.Length - 8), rng.Next(Math.Min(b.Length, 256) + 1) & ~7);
                ulong[] hostile = [ulong.MaxValue, long.MaxValue, 1UL << 40, 0x7FFFFFFF, 0x80000000, 0, ulong.MaxValue - 7];
                ulong value = hostile[rng.Next(hostile.Length)];
                if (b.Length >= 8) BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(field, 8), value);
                return (b, $"u64 at {field} = {value}");
            case 3:
                if (b.Length >= 4)
                {
                    int p = Math.Min(at, b.Length - 4);
                    uint old = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(p, 4));
                    uint[] choices = [old + 1, old - 1, uint.MaxValue, 0x7FFFFFFF, old * 16];
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(p, 4), choices[rng.Next(choices.Length)]);
                }
                return (b, $"u32 at {at} changed");
            case 4:
                int start = at, length = Math.Min(b.Length - start, 1 + rng.Next(64));
                return ([.. b[..(start + length)], .. b[start..(start + length)], .. b[(start + length)..]], $"run of {length} at {start} duplicated");
            case 5:
                int a = rng.Next(b.Length + 1), c = rng.Next(b.Length + 1);
                (a, c) = (Math.Min(a, c), Math.Max(a, c));
                int mid = a + (c - a) / 2;
                return ([.. b[..a], .. b[mid..c], .. b[a..mid], .. b[c..]], $"runs {a}..{mid} and {mid}..{c} swapped");
            case 6:
                byte[] invalid = [0xC3, 0x28, 0xFF, 0xFE, 0xED, 0xA0, 0x80];
                for (int i = 0; i < 3 && b.Length > 0; i++) b[Math.Min(b.Length - 1, at + i)] = invalid[rng.Next(invalid.Length)];
                return (b, $"invalid UTF-8 at {at}");
            case 7:
                // A float payload made NaN or Inf (little-endian float32 pattern) somewhere past the header.
                if (b.Length >= 4)
                {
                    int p = b.Length / 2 + rng.Next(Math.Max(1, b.Length / 2 - 4));
                    p = Math.Min(p & ~3, b.Length - 4);
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(p, 4), rng.Next(2) == 0 ? 0x7FC00000u : 0x7F800000u);
                }
                return (b, "NaN/Inf payload");
            case 8:
                // Deep JSON nesting in place of a value.
                string deep = new string('[', 5000) + new string(']', 5000);
                int colon = Array.IndexOf(b, (byte)':', at);
                if (colon < 0) return ([.. Encoding.UTF8.GetBytes(deep), .. b], "deep nesting prepended");
                return ([.. b[..(colon + 1)], .. Encoding.UTF8.GetBytes(deep), .. b[(colon + 1)..]], $"deep nesting after ':' at {colon}");
            case 9:
                // A JSON number replaced by a hostile one.
                string[] numbers = ["-1", "99999999999999999999", "1e308", "-0", "2147483648", "NaN", "0.5", "\"7\"", "null"];
                int digit = Array.FindIndex(b, at, x => x is >= (byte)'0' and <= (byte)'9');
                if (digit < 0) return (b, "no number");
                int end = digit;
                while (end < b.Length && b[end] is >= (byte)'0' and <= (byte)'9' or (byte)'.' or (byte)'e' or (byte)'-') end++;
                string number = numbers[rng.Next(numbers.Length)];
                return ([.. b[..digit], .. Encoding.UTF8.GetBytes(number), .. b[end..]], $"number at {digit} = {number}");
            case 10:
                return ([.. b, .. Enumerable.Range(0, 1 + rng.Next(512)).Select(_ => (byte)rng.Next(256))], "garbage appended");
            default:
                int zeros = Math.Min(b.Length - at, 1 + rng.Next(256));
                b.AsSpan(at, zeros).Clear();
                return (b, $"{zeros} bytes zeroed at {at}");
        }
    }
}
