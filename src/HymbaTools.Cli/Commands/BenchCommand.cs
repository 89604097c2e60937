using System.CommandLine;
using HymbaTools.Benchmarks;
using HymbaTools.Common;
using HymbaTools.Model;

namespace HymbaTools.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var bench = new Command("bench", "Benchmarks: `bench forward` (reference forward pass vs its GEMMs) and `bench quantize` (codec throughput)");
        bench.Subcommands.Add(Forward(stdout, stderr));
        bench.Subcommands.Add(Quantize(stdout, stderr));
        return bench;
    }

    private static Command Quantize(TextWriter stdout, TextWriter stderr)
    {
        var rows = new Option<int>("--rows") { Description = "Matrix rows", DefaultValueFactory = _ => 1024 };
        var cols = new Option<int>("--cols") { Description = "Matrix columns (a multiple of 256)", DefaultValueFactory = _ => 4096 };
        var repeats = new Option<int>("--repeats") { Description = "Timed repeats (median reported)", DefaultValueFactory = _ => 5 };
        var command = new Command("quantize", "Quantize throughput (MB/s of float32 input) per ggml type, production path vs a single-threaded row-by-row baseline") { rows, cols, repeats };
        command.SetAction(parse => CommandRunner.Run(stderr, () =>
        {
            int r = parse.GetValue(rows), c = parse.GetValue(cols), n = parse.GetValue(repeats);
            if (r < 1 || c < 256 || c % 256 != 0) throw new InvalidRequestException("--cols", "need rows >= 1 and cols a positive multiple of 256");
            if (n < 1) throw new InvalidRequestException("--repeats", $"{n}, expected >= 1");
            var result = QuantizationBenchmark.Run(r, c, n, m => stderr.WriteLine(m));
            stdout.Write(QuantizationBenchmark.ToText(result, r, c));
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Forward(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "HuggingFace checkpoint directory (for example one written by `hymba init --preset 1.5b`)" };
        var tokens = new Option<int[]>("--tokens") { Description = "Prefill lengths in text tokens (repeatable)", DefaultValueFactory = _ => [128, 1024], AllowMultipleArgumentsPerToken = true };
        var decode = new Option<int>("--decode") { Description = "Decode steps to time", DefaultValueFactory = _ => 32 };
        var repeats = new Option<int>("--repeats") { Description = "Timed repeats per measurement (after one warm-up); the median is reported", DefaultValueFactory = _ => 5 };
        var command = new Command("forward", "Time the reference forward pass (prefill, decode) against its projection GEMMs alone on the same shapes")
        {
            checkpoint, tokens, decode, repeats,
        };
        command.SetAction(parse => CommandRunner.Run(stderr, () =>
        {
            var lengths = parse.GetValue(tokens)!;
            if (lengths.Length == 0 || lengths.Any(l => l < 1)) throw new InvalidRequestException("--tokens", "expected positive token counts");
            int r = parse.GetValue(repeats);
            if (r < 1) throw new InvalidRequestException("--repeats", $"{r}, expected >= 1");
            using var ckpt = HymbaCheckpoint.Open(parse.GetValue(checkpoint)!, new CheckpointReadOptions { ScanNonFinite = false });
            stderr.WriteLine("loading weights as float32 ...");
            using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
            var result = ForwardBenchmark.Run(model, lengths, parse.GetValue(decode), r, message => stderr.WriteLine(message));
            stdout.Write(result.ToText());
            return ExitCodes.Success;
        }));
        return command;
    }
}
