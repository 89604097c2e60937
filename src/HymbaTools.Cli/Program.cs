using System.CommandLine;
using HymbaTools.Cli.Commands;

namespace HymbaTools.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Entry point used by tests: runs the CLI in-process with captured output.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("hymba: read, verify, quantize and export NVIDIA Hymba hybrid-head models (HuggingFace checkpoints)")
        {
            InspectCommand.Create(stdout, stderr),
            InitCommand.Create(stdout, stderr),
            VerifyCommand.Create(stdout, stderr),
            BenchCommand.Create(stdout, stderr),
            QuantizeCommand.Create(stdout, stderr),
            ExportCommand.Create(stdout, stderr),
            ImatrixCommand.Create(stdout, stderr),
            MergeKvCommand.Create(stdout, stderr),
            TrainCommand.Create(stdout, stderr),
            GenerateCommand.Create(stdout, stderr),
            CompareCommand.Create(stdout, stderr),
        };
        var parse = root.Parse(args);
        return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }
}
