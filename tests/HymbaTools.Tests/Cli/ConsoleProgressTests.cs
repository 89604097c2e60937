using HymbaTools.Cli;

namespace HymbaTools.Tests.Cli;

/// <summary>Progress lines carry the work's own unit, and appear only on an interactive, non-quiet terminal.</summary>
public class ConsoleProgressTests
{
    [Fact]
    public void Lines_show_bytes_in_MB_and_counts_in_their_unit()
    {
        Assert.Equal("quantize q8_0: 50% (1536 of 3072 MB, ~00:10 left)",
            ConsoleProgress.Format("quantize q8_0", null, 1_536_000_000, 3_072_000_000, TimeSpan.FromSeconds(10)).Replace(" %", "%", StringComparison.Ordinal));
        Assert.Equal("q4_0 compare: 25% (3 of 12 windows, ~00:06 left)",
            ConsoleProgress.Format("q4_0 compare", "windows", 3, 12, TimeSpan.FromSeconds(2)).Replace(" %", "%", StringComparison.Ordinal));
        Assert.Equal("reference: 100% (12 of 12 windows)", ConsoleProgress.Format("reference", "windows", 12, 12, TimeSpan.FromSeconds(5)).Replace(" %", "%", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(true, false, true, true)]
    [InlineData(false, false, true, false)]   // a pipe or a CI log: no ticker
    [InlineData(true, true, true, false)]     // --quiet
    [InlineData(true, false, false, false)]   // --json
    public void Progress_is_drawn_only_on_an_interactive_terminal(bool interactive, bool quiet, bool enabled, bool expectOutput)
    {
        var sink = new StringWriter();
        var stderr = new CliErrorWriter(sink, interactive) { Quiet = quiet };
        using (var progress = new ConsoleProgress(stderr, "work", "windows", enabled))
        {
            var start = DateTime.UtcNow;
            for (int i = 1; DateTime.UtcNow - start < TimeSpan.FromSeconds(1.3); i++)
            {
                progress.Report((i, 1_000_000));
                Thread.Sleep(50);
            }
        }
        Assert.Equal(expectOutput, sink.ToString().Contains("windows", StringComparison.Ordinal));
    }
}
