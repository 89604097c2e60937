using System.Runtime.CompilerServices;

namespace HymbaTools.Tests.TestData;

/// <summary>Settings the whole test run shares, applied before any test (and inherited by the hymba child processes tests start).</summary>
internal static class TestEnvironment
{
    /// <summary>The source-digest cache goes to a directory of this run, not to the user's ~/.cache; no HuggingFace cache is read.</summary>
    [ModuleInitializer]
    internal static void IsolateCaches()
    {
        string cache = Path.Combine(Path.GetTempPath(), "hymba-tests-cache-" + Environment.ProcessId);
        Environment.SetEnvironmentVariable("HYMBA_CACHE_DIR", cache);
        // No test reads the user's HuggingFace cache: Hub ids resolve only in caches the tests build.
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", Path.Combine(cache, "no-huggingface-cache"));
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { if (Directory.Exists(cache)) Directory.Delete(cache, recursive: true); }
            catch (IOException) { /* best effort: a temp directory */ }
        };
    }
}
