using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace HymbaTools.Tests.Cli;

/// <summary>
/// `dotnet hymba.dll ...` as a child process that a test signals at a moment it detects (a line on stderr, text on
/// stdout, a temporary output, the model file or a native runtime mapped into the process), with every stderr line
/// timestamped so that what came after the signal can be told apart.
/// </summary>
internal sealed class InterruptibleChild : IDisposable
{
    public const int SigInt = 2;
    public const int SigTerm = 15;

    private readonly Process _process;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<(TimeSpan At, string Line)> _stderr = [];
    private readonly StringBuilder _stdout = new();
    private readonly Thread _stdoutReader;
    private readonly Thread _stderrReader;
    private TimeSpan? _signalledAt;

    public InterruptibleChild(string workingDirectory, params string[] args)
    {
        var info = DefaultSignals.Start("dotnet", [typeof(HymbaTools.Cli.Program).Assembly.Location, .. args]);
        info.WorkingDirectory = workingDirectory;
        Args = string.Join(' ', args);
        _process = Process.Start(info)!;
        // Both pipes are read on threads of their own, not by the thread pool's callbacks: in a full test run the pool
        // can be busy for seconds, and a fast command then exits before its lines reach the test (a moment missed).
        _stderrReader = StartReader("stderr", () =>
        {
            while (_process.StandardError.ReadLine() is { } line)
                lock (_stderr) _stderr.Add((_clock.Elapsed, line));
        });
        // Raw characters, not lines: generate streams its text without line ends.
        _stdoutReader = StartReader("stdout", () =>
        {
            var buffer = new char[4096];
            int read;
            while ((read = _process.StandardOutput.Read(buffer, 0, buffer.Length)) > 0)
                lock (_stdout) _stdout.Append(buffer, 0, read);
        });
    }

    private static Thread StartReader(string name, Action read)
    {
        var thread = new Thread(() => read()) { IsBackground = true, Name = $"child {name}" };
        thread.Start();
        return thread;
    }

    public string Args { get; }
    public int Id => _process.Id;

    public string Stdout
    {
        get { lock (_stdout) return _stdout.ToString(); }
    }

    public string Stderr
    {
        get { lock (_stderr) return string.Join('\n', _stderr.Select(l => l.Line)); }
    }

    /// <summary>Stderr lines read after the signal was sent.</summary>
    public List<string> StderrAfterSignal
    {
        get { lock (_stderr) return [.. _stderr.Where(l => l.At >= _signalledAt).Select(l => l.Line)]; }
    }

    /// <summary>Polls until <paramref name="condition"/> holds; false when the process exited first or the time ran out.</summary>
    public bool WaitFor(Func<InterruptibleChild, bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (condition(this)) return true;
            if (_process.HasExited) return false;
            Thread.Sleep(5);
        }
        return false;
    }

    /// <summary>Whether the process has mapped or opened a file whose path contains <paramref name="fragment"/> (a model file, libtorch_cpu, libonnxruntime).</summary>
    public bool Maps(string fragment)
    {
        try
        {
            if (File.ReadAllText($"/proc/{Id}/maps").Contains(fragment, StringComparison.Ordinal)) return true;
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{Id}/fd"))
            {
                try
                {
                    if (new FileInfo(fd).LinkTarget?.Contains(fragment, StringComparison.Ordinal) == true) return true;
                }
                catch (IOException) { }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return false;
    }

    public bool StderrHas(string text)
    {
        lock (_stderr) return _stderr.Any(l => l.Line.Contains(text, StringComparison.Ordinal));
    }

    /// <param name="again">a repeated signal: what came after the signal is still counted from the first</param>
    public void Signal(int signal, bool again = false)
    {
        if (!again) lock (_stderr) _signalledAt = _clock.Elapsed;
        Assert.Equal(0, Kill(Id, signal));
    }

    /// <summary>Waits for the exit; the time from the signal to the exit, or null when it did not exit within <paramref name="bound"/>.</summary>
    public TimeSpan? WaitForExit(TimeSpan bound)
    {
        if (!_process.WaitForExit(bound)) return null;
        _process.WaitForExit();
        _stderrReader.Join(TimeSpan.FromSeconds(10));   // the readers drain what the process wrote
        _stdoutReader.Join(TimeSpan.FromSeconds(10));
        return _clock.Elapsed - (_signalledAt ?? TimeSpan.Zero);
    }

    public int ExitCode => _process.ExitCode;

    /// <summary>How the process stands, for a failure message: its exit code (128 + N: killed by signal N) or "running".</summary>
    public string Status
    {
        get
        {
            if (!_process.HasExited) return "running";
            _process.WaitForExit();
            return $"exited with {_process.ExitCode}";
        }
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
