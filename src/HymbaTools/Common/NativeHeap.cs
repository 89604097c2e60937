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

    private static bool _unavailable;

    public static void Trim()
    {
        if (_unavailable || !OperatingSystem.IsLinux()) return;
        try { _ = MallocTrim(0); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { _unavailable = true; }
    }
}
