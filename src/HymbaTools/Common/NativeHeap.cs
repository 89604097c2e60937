using System.Runtime.InteropServices;

namespace HymbaTools.Common;

/// <summary>
/// Gives freed native memory back to the system. libtorch's buffers come from glibc's malloc, which keeps freed
/// blocks in per-thread arenas: a walk that frees a layer's few hundred MB and allocates the next layer's on other
/// worker threads would see its resident memory grow layer by layer without this. A no-op where glibc is absent.
/// </summary>
internal static partial class NativeHeap
{
    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

    private const int MmapThreshold = -3;   // M_MMAP_THRESHOLD

    /// <summary>
    /// From now on, blocks of <paramref name="bytes"/> or more are mapped on their own and given back when freed. glibc
    /// otherwise raises this threshold to the largest block freed so far (up to 32 MB), after which a layer's
    /// temporaries of a few MB stay in the heap arenas of the worker threads that freed them.
    /// </summary>
    public static void ReturnBlocksFrom(int bytes)
    {
        if (_unavailable || !OperatingSystem.IsLinux()) return;
        try { _ = MallOpt(MmapThreshold, bytes); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { _unavailable = true; }
    }

    private static bool _unavailable;

    public static void Trim()
    {
        if (_unavailable || !OperatingSystem.IsLinux()) return;
        try { _ = MallocTrim(0); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { _unavailable = true; }
    }
}
