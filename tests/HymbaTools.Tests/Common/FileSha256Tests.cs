using System.Security.Cryptography;
using HymbaTools.Common;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Common;

/// <summary>The remembered source digest: right, reused only for the unchanged file, never for a racily fresh one.</summary>
public class FileSha256Tests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static string Sha(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    [Fact]
    public void Digest_is_remembered_for_the_unchanged_file_and_recomputed_after_any_change()
    {
        string cache = _dir.File("cache"), file = _dir.File("weights.bin");
        var data = new byte[100_000];
        new Random(3).NextBytes(data);
        File.WriteAllBytes(file, data);
        Assert.Equal(Sha(data), FileSha256.Of(file, cache, TimeSpan.Zero));
        var entry = Assert.Single(Directory.GetFiles(Path.Combine(cache)));

        // The entry is what the next call returns: plant a different digest in it to see that it was used.
        string planted = new('a', 64);
        var lines = File.ReadAllLines(entry);
        File.WriteAllText(entry, lines[0] + "\n" + planted + "\n");
        Assert.Equal(planted, FileSha256.Of(file, cache, TimeSpan.Zero));

        // Same size, same modification time restored: the change time still moves, so the digest is recomputed.
        var mtime = File.GetLastWriteTimeUtc(file);
        data[500] ^= 0xFF;
        File.WriteAllBytes(file, data);
        File.SetLastWriteTimeUtc(file, mtime);
        Assert.Equal(Sha(data), FileSha256.Of(file, cache, TimeSpan.Zero));
    }

    /// <summary>HuggingFace cache snapshots are symlinks into blobs/: the digest belongs to the blob, whichever link led to it.</summary>
    [Fact]
    public void Links_to_one_blob_share_its_remembered_digest()
    {
        string cache = _dir.File("cache"), blob = _dir.File("blob");
        var data = new byte[10_000];
        new Random(5).NextBytes(data);
        File.WriteAllBytes(blob, data);
        Directory.CreateDirectory(_dir.File("rev1"));
        Directory.CreateDirectory(_dir.File("rev2"));
        string first = Path.Combine(_dir.Path, "rev1", "model.safetensors"), second = Path.Combine(_dir.Path, "rev2", "model.safetensors");
        File.CreateSymbolicLink(first, Path.Combine("..", "blob"));
        File.CreateSymbolicLink(second, blob);
        Assert.Equal(Sha(data), FileSha256.Of(first, cache, TimeSpan.Zero));
        var entry = Assert.Single(Directory.GetFiles(cache));
        Assert.StartsWith(blob + "\t", File.ReadAllText(entry), StringComparison.Ordinal);   // keyed by the blob itself

        string planted = new('b', 64);
        File.WriteAllText(entry, File.ReadAllLines(entry)[0] + "\n" + planted + "\n");
        Assert.Equal(planted, FileSha256.Of(second, cache, TimeSpan.Zero));   // the other link finds it
        Assert.Equal(planted, FileSha256.Of(blob, cache, TimeSpan.Zero));
        Assert.Single(Directory.GetFiles(cache));
    }

    [Fact]
    public void A_file_changed_moments_ago_is_hashed_but_not_remembered()
    {
        string cache = _dir.File("cache"), file = _dir.File("fresh.bin");
        File.WriteAllBytes(file, [1, 2, 3]);
        Assert.Equal(Sha([1, 2, 3]), FileSha256.Of(file, cache, TimeSpan.FromMinutes(5)));
        Assert.False(Directory.Exists(cache) && Directory.EnumerateFileSystemEntries(cache).Any());
    }

    [Fact]
    public void Without_a_cache_directory_nothing_is_written()
    {
        string file = _dir.File("plain.bin");
        File.WriteAllBytes(file, [9]);
        Assert.Equal(Sha([9]), FileSha256.Of(file, null, TimeSpan.Zero));
        Assert.Equal([file], Directory.GetFileSystemEntries(_dir.Path));
    }
}
