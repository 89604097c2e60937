using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Cli;

/// <summary>--threads is accepted by every command that computes, checked, and honoured without changing what a check concludes.</summary>
public class ThreadsOptionTests
{
    public static TheoryData<string> ComputingCommands() =>
        ["quantize", "verify", "generate", "diff", "compare", "export", "convert", "imatrix", "train", "merge-kv", "init", "bench"];

    [Theory]
    [MemberData(nameof(ComputingCommands))]
    public void Every_computing_command_documents_threads(string command)
    {
        var help = CliRunner.Run(command, "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--threads", help.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Zero_threads_is_a_usage_error_naming_the_option()
    {
        var r = CliRunner.Run("verify", Fixtures.TinyB, "--threads", "0");
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("error: --threads: 0, expected >= 1", r.FirstErrorLine);
    }

    /// <summary>A child process: libtorch's thread count is process-wide, and in-process tests comparing two runs must not see it change.</summary>
    [Fact]
    public void One_thread_verifies_against_the_golden_logits()
    {
        var r = HymbaTools.Cli.ChildProcess.Hymba(["verify", Fixtures.TinyB, "--threads", "1"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
    }
}
