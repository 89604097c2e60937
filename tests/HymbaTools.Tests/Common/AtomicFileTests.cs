using HymbaTools.Common;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Common;

/// <summary>
/// AtomicFile hands its writer a stream that passes finished stretches to the kernel's writeback as it goes; the
/// file must hold exactly what was written, including bytes patched behind the cursor afterwards (GGUF digests).
/// </summary>
public class AtomicFileTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_large_file_written_in_uneven_pieces_and_patched_behind_the_cursor_reads_back_exactly()
    {
        var random = new Random(7);
        var expected = new byte[80 << 20];   // past two 32 MB writeback stretches
        random.NextBytes(expected);
        string path = _dir.File("large.bin");
        AtomicFile.Write(path, stream =>
        {
            int written = 0;
            while (written < expected.Length)
            {
                int piece = Math.Min(expected.Length - written, random.Next(1, 9 << 20));
                if (piece % 3 == 0) stream.Write(expected, written, piece);
                else stream.Write(expected.AsSpan(written, piece));
                written += piece;
            }
            // Patch bytes near the start, as the GGUF writer patches its deferred digests, then return to the end.
            expected[100] ^= 0xFF;
            expected[40 << 20] ^= 0xFF;
            foreach (int at in new[] { 100, 40 << 20 })
            {
                stream.Position = at;
                stream.Write(expected, at, 1);
            }
            stream.Position = stream.Length;
        });
        Assert.True(File.ReadAllBytes(path).AsSpan().SequenceEqual(expected));
        Assert.Equal([path], Directory.GetFiles(_dir.Path));   // no temporary left beside it
    }
}
