using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace HymbaTools.Common;

/// <summary>
/// A whole file mapped read-only with a stable base pointer; the one place that acquires and releases
/// the mapping for the safetensors and GGUF readers.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _mapping;
    private readonly MemoryMappedViewAccessor _view;

    private MappedFile(MemoryMappedFile mapping, MemoryMappedViewAccessor view, byte* basePointer, long length)
    {
        _mapping = mapping;
        _view = view;
        Base = basePointer;
        Length = length;
    }

    public byte* Base { get; }
    public long Length { get; }

    /// <summary>Maps a non-empty file; I/O failures surface as IOException or UnauthorizedAccessException.</summary>
    public static MappedFile Open(string path, long length)
    {
        var mapping = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            return new MappedFile(mapping, view, pointer + view.PointerOffset, length);
        }
        catch
        {
            view?.Dispose();
            mapping.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Drops every page of the mapping from this process's resident set; a streaming pass calls it once it is done
    /// with a tensor. The mapping is read-only and file-backed, so the pages stay in the page cache and a later read
    /// faults them back in unchanged; without this, a whole-checkpoint pass leaves the whole input counted as the
    /// process's RSS (what container limits and `time -v` see). The whole mapping rather than the tensor's range:
    /// a read fault also maps cached pages around it (fault-around, whole large folios on current kernels), so
    /// exact ranges leave their neighbours' edges behind, which added up to 30 MiB over 915 tensors (measured);
    /// unmapped stretches cost the kernel next to nothing to skip. A no-op where madvise is unavailable.
    /// </summary>
    public void ReleaseResidentPages()
    {
        if (IsDisposed || !OperatingSystem.IsLinux()) return;
        _ = Madvise((nint)Base, (nuint)Length, MadviseDontNeed);   // advice: failure changes nothing
    }

    private const int MadviseDontNeed = 4;

    [DllImport("libc", EntryPoint = "madvise", SetLastError = false)]
    private static extern int Madvise(nint address, nuint length, int advice);

    /// <summary>True after <see cref="Dispose"/>: the base pointer no longer points at the file.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Throws when the mapping was released, so no view can read unmapped memory.</summary>
    public void ThrowIfDisposed(string path) => ObjectDisposedException.ThrowIf(IsDisposed, path);

    /// <summary>Releases the mapping; a second call does nothing.</summary>
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _mapping.Dispose();
    }
}
