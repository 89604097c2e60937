using HymbaTools.Cli;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>
/// README "Exit codes": an existing output is replaced only with --force, or when it is a previous output of the
/// same kind (a GGUF file for quantize, an importance matrix for imatrix, a checkpoint written by init); otherwise
/// exit 2 naming the path and --force, with the file untouched. Before, quantize and imatrix replaced a text file
/// silently, and init wrote into any directory, leaving an earlier checkpoint's shards and index beside the new file.
/// </summary>
public class OverwriteRuleTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private string Notes(string name)
    {
        string path = _dir.File(name);
        File.WriteAllText(path, "my notes\n");
        return path;
    }

    private static void AssertRefused(CliRunner.Result r, string option, string path, string kind)
    {
        Assert.Equal(ExitCodes.InvalidInput, r.ExitCode);
        Assert.Equal($"error: {option}: {path} {kind} (use --force to replace it)", r.Stderr.TrimEnd('\n'));
    }

    [Fact]
    public void Quantize_replaces_a_gguf_file_but_not_a_text_file_unless_forced()
    {
        string notes = Notes("notes.txt");
        AssertRefused(CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", notes), "--output", notes, "exists and is not a GGUF file");
        Assert.Equal("my notes\n", File.ReadAllText(notes));

        string gguf = _dir.File("model.gguf");
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", gguf).ExitCode);
        var before = File.ReadAllBytes(gguf);
        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q4_0", "-o", gguf).ExitCode);   // a previous GGUF: replaced
        Assert.NotEqual(before, File.ReadAllBytes(gguf));

        Assert.Equal(0, CliRunner.Run("quantize", Fixtures.TinyA, "--type", "q8_0", "-o", notes, "--force").ExitCode);
        Assert.True(HymbaTools.Formats.Gguf.GgufFile.IsGguf(notes));
    }

    [Fact]
    public void Imatrix_replaces_an_importance_matrix_but_not_a_text_file_unless_forced()
    {
        string tokens = _dir.File("tokens.txt");
        File.WriteAllText(tokens, string.Join(' ', Enumerable.Range(0, 64).Select(i => i * 7 % 200)));
        string notes = Notes("notes.txt");
        AssertRefused(CliRunner.Run("imatrix", Fixtures.TinyA, "--tokens", tokens, "--chunk", "16", "-o", notes),
            "--output", notes, "exists and is not an importance matrix written by hymba imatrix");
        Assert.Equal("my notes\n", File.ReadAllText(notes));

        string matrix = _dir.File("m.imatrix");
        Assert.Equal(0, CliRunner.Run("imatrix", Fixtures.TinyA, "--tokens", tokens, "--chunk", "16", "--chunks", "1", "-o", matrix).ExitCode);
        Assert.Equal(0, CliRunner.Run("imatrix", Fixtures.TinyA, "--tokens", tokens, "--chunk", "16", "--chunks", "2", "-o", matrix).ExitCode);
        Assert.Equal(2, HymbaTools.Quantization.ImportanceMatrix.Load(matrix).Chunks);
        Assert.Equal(0, CliRunner.Run("imatrix", Fixtures.TinyA, "--tokens", tokens, "--chunk", "16", "--chunks", "3", "-o", notes, "--force").ExitCode);
        Assert.Equal(3, HymbaTools.Quantization.ImportanceMatrix.Load(notes).Chunks);
    }

    [Fact]
    public void Init_over_an_earlier_sharded_checkpoint_leaves_exactly_the_new_one()
    {
        string dir = _dir.File("ck");
        Assert.Equal(0, CliRunner.Run("init", dir, "--preset", "tiny", "--shards", "3", "--seed", "1").ExitCode);
        Assert.Equal(0, CliRunner.Run("init", dir, "--preset", "tiny", "--shards", "1", "--seed", "2").ExitCode);
        Assert.Equal(["config.json", "model.safetensors"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // What inspect and the forward pass read is the new seed's weights, as in a fresh directory.
        string fresh = _dir.File("fresh");
        Assert.Equal(0, CliRunner.Run("init", fresh, "--preset", "tiny", "--seed", "2").ExitCode);
        using (var replaced = HymbaTools.Model.HymbaCheckpoint.Open(dir))
        using (var expected = HymbaTools.Model.HymbaCheckpoint.Open(fresh))
            Assert.Equal(expected.Get("model.embed_tokens.weight").Bytes.ToArray(), replaced.Get("model.embed_tokens.weight").Bytes.ToArray());
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path, "*.partial"));
    }

    /// <summary>`mkdir m; cd m; hymba init . ...`: the directory a shell stands in is filled, not replaced by another one.</summary>
    [Fact]
    public void Init_keeps_an_existing_directory_itself()
    {
        string dir = Directory.CreateDirectory(_dir.File("here")).FullName;
        string before = Inode(dir);
        Assert.Equal(0, CliRunner.Run("init", dir, "--preset", "tiny", "--shards", "2").ExitCode);
        Assert.Equal(0, CliRunner.Run("init", dir, "--preset", "tiny").ExitCode);
        Assert.Equal(before, Inode(dir));
        Assert.Equal(["config.json", "model.safetensors"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path, "*.partial"));
    }

    private static string Inode(string path)
    {
        var run = HymbaTools.Cli.ChildProcess.Start(new System.Diagnostics.ProcessStartInfo("stat") { ArgumentList = { "-c", "%i", path } });
        Assert.Equal(0, run.ExitCode);
        return run.Stdout.Trim();
    }

    [Fact]
    public void Init_refuses_a_directory_with_other_files_unless_forced()
    {
        string dir = Directory.CreateDirectory(_dir.File("mine")).FullName;
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "keep");
        AssertRefused(CliRunner.Run("init", dir, "--preset", "tiny"), "dir", dir, "is not empty and is not a checkpoint written by hymba init");
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName));

        // A checkpoint of another origin (no init marker in its weights) is not replaced silently either.
        string other = _dir.CopyOf(Fixtures.TinyA, "other");
        var r = CliRunner.Run("init", other, "--preset", "tiny");
        Assert.Equal(ExitCodes.InvalidInput, r.ExitCode);
        Assert.True(File.Exists(Path.Combine(other, "golden.safetensors")));

        Assert.Equal(0, CliRunner.Run("init", dir, "--preset", "tiny", "--force").ExitCode);
        Assert.Equal(["config.json", "model.safetensors"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }
}
