namespace HymbaTools.Tests.TestData;

/// <summary>
/// The golden fixture checkpoints (copied from the project's shared fixtures into tests/fixtures, with their
/// README). Set HYMBA_FIXTURES to a directory of further fixture sets (each a checkpoint with
/// golden.safetensors) to run the same golden tests on them.
/// </summary>
public static class Fixtures
{
    public static string Root
    {
        get
        {
            string? fromEnv = Environment.GetEnvironmentVariable("HYMBA_FIXTURES");
            if (!string.IsNullOrEmpty(fromEnv)) return fromEnv;
            return Path.Combine(AppContext.BaseDirectory, "fixtures", "hymba-tiny");
        }
    }

    public static string TinyA => Path.Combine(Root, "tiny-a");
    public static string TinyB => Path.Combine(Root, "tiny-b");

    public static string Golden(string checkpoint) => Path.Combine(checkpoint, "golden.safetensors");

    /// <summary>Every fixture directory that has a golden file (xunit MemberData).</summary>
    public static IEnumerable<object[]> All() =>
        Directory.GetDirectories(Root).Where(d => File.Exists(Golden(d))).Order(StringComparer.Ordinal).Select(d => new object[] { Path.GetFileName(d) });

    public static string Path_(string name) => Path.Combine(Root, name);
}

/// <summary>Numeric tolerances used by the tests, in one place.</summary>
public static class TestTolerances
{
    /// <summary>Max abs logit difference against the official PyTorch logits (fixture README: fp32 noise is about 1.5e-5).</summary>
    public const double GoldenLogits = 1e-4;

    /// <summary>
    /// Max abs logit difference of an export with a float16 K/V cache against the official logits: measured 3.1e-3 on
    /// tiny-b and 2.7e-3 on tiny-a (each key and value rounded to 11 significant bits), tighter than the runner's own
    /// 1e-2 so that a regression in the casts shows here first.
    /// </summary>
    public const double Float16StateGoldenLogits = 5e-3;
}

/// <summary>A temporary directory removed at dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "hymba-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Copies a checkpoint directory here (so tests can corrupt it).</summary>
    public string CopyOf(string directory, string? name = null)
    {
        string target = System.IO.Path.Combine(Path, name ?? System.IO.Path.GetFileName(directory));
        Directory.CreateDirectory(target);
        foreach (var f in Directory.GetFiles(directory)) System.IO.File.Copy(f, System.IO.Path.Combine(target, System.IO.Path.GetFileName(f)));
        return target;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
