using System.Diagnostics;
using System.Globalization;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>
/// README "Exit codes": a run that writes to a destination removes the temporaries (<c>.NAME.PID.GUID.partial</c>)
/// that killed runs left beside it. A killed run's pid can still exist: as a zombie until its parent reaps it (a
/// script that killed it and has not waited yet), or reused by a later, unrelated process. Before, both kept the
/// partial alive through the next run ("only a later run removed it"). A temporary of a writer that still runs
/// must survive.
/// </summary>
public class StalePartialTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly List<Process> _helpers = [];

    public void Dispose()
    {
        foreach (var p in _helpers)
        {
            try { p.Kill(entireProcessTree: true); p.WaitForExit(); } catch (InvalidOperationException) { }
            p.Dispose();
        }
        _dir.Dispose();
    }

    private Process StartHelper(string script)
    {
        var info = new ProcessStartInfo("sh") { ArgumentList = { "-c", script }, RedirectStandardOutput = true, UseShellExecute = false };
        var process = Process.Start(info)!;
        _helpers.Add(process);
        return process;
    }

    /// <summary>A pid that is a zombie: a child its parent (a shell that exec'd into sleep) never reaps.</summary>
    private int Zombie()
    {
        var parent = StartHelper("sleep 0.3 & echo $!; exec sleep 120");
        int pid = int.Parse(parent.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
        var clock = Stopwatch.StartNew();
        while (State(pid) != 'Z' && clock.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(10);
        Assert.Equal('Z', State(pid));
        return pid;
    }

    private static char? State(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2];
        }
        catch (IOException) { return null; }
    }

    /// <summary>A running process (its pid may be a killed writer's pid reused).</summary>
    private int Running()
    {
        var p = StartHelper("exec sleep 120");
        Thread.Sleep(50);
        return p.Id;
    }

    /// <summary>Temporaries beside <paramref name="destination"/> named as a writer with each pid names them.</summary>
    private static (string Zombie, string Reused, string Gone, string Live) LeaveTemporaries(string destination, int zombie, int reused, int live, bool directories)
    {
        string directory = Path.GetDirectoryName(destination)!, name = Path.GetFileName(destination);
        string Make(int pid)
        {
            string path = Path.Combine(directory, $".{name}.{pid.ToString(CultureInfo.InvariantCulture)}.{Guid.NewGuid():N}.partial");
            if (directories)
            {
                Directory.CreateDirectory(path);
                File.WriteAllText(Path.Combine(path, "half.bin"), "half");
            }
            else File.WriteAllText(path, "half");
            return path;
        }
        string reusedPath = Make(reused);
        // Written an hour before the process that now has its pid started: the pid was reused.
        var longAgo = DateTime.UtcNow - TimeSpan.FromHours(1);
        if (directories) Directory.SetLastWriteTimeUtc(reusedPath, longAgo); else File.SetLastWriteTimeUtc(reusedPath, longAgo);
        return (Make(zombie), reusedPath, Make(int.MaxValue - 7), Make(live));
    }

    public static TheoryData<string> Commands => ["quantize", "imatrix", "export", "merge-kv", "init", "convert", "compare", "diff"];

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_run_removes_what_killed_runs_left_beside_its_destination_and_keeps_a_live_writers(string command)
    {
        string tokens = _dir.File("tokens.txt");
        File.WriteAllText(tokens, string.Join(' ', Enumerable.Range(0, 64).Select(i => i * 7 % 200)));
        var (destination, args, isDirectory) = command switch
        {
            "quantize" => (_dir.File("q.gguf"), new[] { "quantize", Fixtures.TinyA, "--type", "q8_0", "-o", _dir.File("q.gguf") }, false),
            "imatrix" => (_dir.File("m.imatrix"), ["imatrix", Fixtures.TinyA, "--tokens", tokens, "--chunk", "16", "-o", _dir.File("m.imatrix")], false),
            "export" => (_dir.File("onnx"), ["export", Fixtures.TinyA, "--type", "f32", "-o", _dir.File("onnx")], true),
            "merge-kv" => (_dir.File("merged"), ["merge-kv", Fixtures.TinyB, "--groups", "[[1,2,3]]", "--tokens", tokens, "-o", _dir.File("merged")], true),
            "init" => (_dir.File("ck"), ["init", _dir.File("ck"), "--preset", "tiny"], true),
            "convert" => (_dir.File("conv"), ["convert", Fixtures.TinyA, "--to", "gguf:q8_0", "--tokens", tokens, "--window", "16", "--max-tokens", "64", "--out", _dir.File("conv")], true),
            "compare" => (_dir.File("c.json"), ["compare", Fixtures.TinyA, Fixtures.TinyA, "--tokens", tokens, "--chunk", "16", "--json-out", _dir.File("c.json")], false),
            _ => (_dir.File("d.json"), ["diff", Fixtures.TinyA, Fixtures.TinyA, "--tokens", tokens, "--window", "16", "--json-out", _dir.File("d.json")], false),
        };
        int live = Running();
        var left = LeaveTemporaries(destination, Zombie(), Running(), live, isDirectory);

        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.False(Path.Exists(left.Zombie), "a zombie's temporary survived");
        Assert.False(Path.Exists(left.Reused), "the temporary of a pid reused by a later process survived");
        Assert.False(Path.Exists(left.Gone), "the temporary of a pid that no longer runs survived");
        Assert.True(Path.Exists(left.Live), "a running writer's temporary was removed");
    }
}
