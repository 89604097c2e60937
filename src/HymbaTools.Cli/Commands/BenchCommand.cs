using System.CommandLine;
using HymbaTools.Benchmarks;
using HymbaTools.Common;
using HymbaTools.Formats.Gguf;
using HymbaTools.Model;

namespace HymbaTools.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var bench = new Command("bench", "Benchmarks: `bench forward` (reference forward pass vs its GEMMs), `bench quantize` (codec throughput), `bench onnx` (ONNX Runtime vs the reference), `bench convert` (quantize wall and peak memory vs a plain copy), `bench costs` (the bit budget's proxy cost against measured KL)");
        bench.Subcommands.Add(Forward(stdout, stderr));
        bench.Subcommands.Add(Quantize(stdout, stderr));
        bench.Subcommands.Add(BenchOnnxCommand.Create(stdout, stderr));
        bench.Subcommands.Add(Convert(stdout, stderr));
        bench.Subcommands.Add(BenchCostsCommand.Create(stdout, stderr));
        return bench;
    }

    /// <summary>llama.cpp's type names for the presets that have one (iq4_nl_m is this tool's own mixture).</summary>
    private static readonly Dictionary<string, string> LlamaTypes = new(StringComparer.Ordinal)
    {
        ["q8_0"] = "Q8_0", ["q4_0"] = "Q4_0", ["q4_1"] = "Q4_1", ["q5_0"] = "Q5_0", ["q5_1"] = "Q5_1",
        ["q4_k_m"] = "Q4_K_M", ["q5_k_m"] = "Q5_K_M", ["q6_k"] = "Q6_K", ["iq4_nl"] = "IQ4_NL",
    };

    private static Command Convert(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "HuggingFace checkpoint directory (for example `hymba init --preset 1.5b`)" + CheckpointInput.HubHelp };
        var types = new Option<string>("--types") { Description = "Presets to convert to, comma-separated", DefaultValueFactory = _ => "q8_0,q4_0,q4_k_m" };
        var repeats = new Option<int>("--repeats") { Description = "Runs of each (alternating; medians reported)", DefaultValueFactory = _ => 3 };
        var workDir = new Option<string?>("--work-dir") { Description = "Where the outputs are written and deleted (default: the system temp directory; use the disk you convert on)" };
        var llama = new Option<string?>("--llama-quantize") { Description = "llama.cpp's llama-quantize binary: also time it on --llama-input, in the same alternating runs" };
        var llamaInput = new Option<string?>("--llama-input") { Description = "An F16/BF16 GGUF for llama-quantize of the same size and widths as the checkpoint" };
        var command = new Command("convert", "Wall time, input MB/s and peak resident memory of `hymba quantize` per preset, each run as its own process, " +
            "next to a plain `cp` of the same input (and optionally llama.cpp's quantizer) measured in the same alternating runs. Each preset runs twice: " +
            "as a first conversion (the source sha256 computed) and again (the sha256 remembered, see the README)")
        {
            checkpoint, types, repeats, workDir, llama, llamaInput,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            using var ckpt = HymbaCheckpoint.Open(CheckpointInput.Resolve(parse.GetValue(checkpoint)!, stderr), new CheckpointReadOptions { ScanNonFinite = false });
            if (!ckpt.HasWeights) throw new InvalidCheckpointException(ckpt.Files.Directory, "", "no weights (config.json only)");
            var presets = parse.GetValue(types)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => Quantization.QuantizationPreset.Find(t) ?? throw new InvalidRequestException("--types", $"'{t}' is not a preset of `hymba quantize --help`")).ToList();
            int n = parse.GetValue(repeats);
            if (n < 1) throw new InvalidRequestException("--repeats", $"{n}, expected >= 1");
            string? llamaBinary = parse.GetValue(llama), llamaGguf = parse.GetValue(llamaInput);
            if ((llamaBinary is null) != (llamaGguf is null)) throw new InvalidRequestException(llamaBinary is null ? "--llama-quantize" : "--llama-input", "give --llama-quantize and --llama-input together");
            if (llamaBinary is not null && !File.Exists(llamaBinary)) throw new InvalidRequestException("--llama-quantize", $"{llamaBinary}: no such file");
            if (llamaGguf is not null && !GgufFile.IsGguf(llamaGguf)) throw new InvalidRequestException("--llama-input", $"{llamaGguf}: not a GGUF file");
            var inputs = ckpt.Tensors.Files.Select(f => f.Path).ToList();
            long inputBytes = inputs.Sum(FileLength.Of);
            string threads = ComputeThreads.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            // A registered temporary directory: an interrupt removes it with everything written into it.
            string root = TemporaryPaths.Beside(Path.Combine(Path.GetFullPath(parse.GetValue(workDir) ?? Path.GetTempPath()), "hymba-bench-convert"));
            Directory.CreateDirectory(root);
            var runs = new Dictionary<string, List<ChildProcess.Run>> { ["cp"] = [] };
            try
            {
                // Remembered digests: primed once, untimed, for the "again" rows; first conversions get an empty cache each.
                string warmCache = Path.Combine(root, "digests-remembered");
                foreach (var file in inputs.Append(ckpt.Files.ConfigPath))
                    FileSha256.Of(file, Path.Combine(warmCache, "sha256"), TimeSpan.Zero);
                for (int r = 0; r < n; r++)
                {
                    // Alternating order, so drift of the machine (page cache, thermal) spreads over every row alike.
                    var copy = new System.Diagnostics.ProcessStartInfo("cp");
                    foreach (var f in inputs) copy.ArgumentList.Add(f);
                    copy.ArgumentList.Add(root);
                    Add(runs, "cp", Checked("cp", ChildProcess.Start(copy)));
                    foreach (var f in inputs) File.Delete(Path.Combine(root, Path.GetFileName(f)));
                    // hymba flushes its output to disk before renaming it into place; a copy that does the same is the
                    // like-for-like baseline (cp alone leaves its bytes in the page cache).
                    var durableCopy = new System.Diagnostics.ProcessStartInfo("sh")
                    {
                        ArgumentList = { "-c", "d=\"$1\"; shift; cp \"$@\" \"$d\" && for f in \"$@\"; do sync \"$d/$(basename \"$f\")\" || exit 1; done", "sh", root },
                    };
                    foreach (var f in inputs) durableCopy.ArgumentList.Add(f);
                    Add(runs, "cp+sync", Checked("cp + sync", ChildProcess.Start(durableCopy)));
                    foreach (var f in inputs) File.Delete(Path.Combine(root, Path.GetFileName(f)));
                    foreach (var p in presets)
                    {
                        string output = Path.Combine(root, $"out-{p.Name}.gguf");
                        if (llamaBinary is not null && LlamaTypes.TryGetValue(p.Name, out var llamaType))
                        {
                            stderr.WriteLine($"run {r + 1}/{n}: llama-quantize {llamaType} ...");
                            var info = new System.Diagnostics.ProcessStartInfo(llamaBinary) { ArgumentList = { llamaGguf!, output, llamaType, threads } };
                            var llamaRun = ChildProcess.Start(info);
                            // A llama-quantize built without this type (minimal builds) leaves the row out instead of failing the bench.
                            if (llamaRun.ExitCode == 0) Add(runs, $"llama-quantize {llamaType}", llamaRun);
                            else stderr.WriteLine($"note: llama-quantize {llamaType} exited {llamaRun.ExitCode} ({llamaRun.Stderr.Split('\n').FirstOrDefault(l => l.Length > 0)}); no baseline for {p.Name}");
                            File.Delete(output);
                        }
                        string coldCache = Path.Combine(root, $"digests-{r}-{p.Name}");
                        foreach (var (label, cache) in new[] { ("first conversion", coldCache), ("again", warmCache) })
                        {
                            stderr.WriteLine($"run {r + 1}/{n}: quantize {p.Name} ({label}) ...");
                            var run = ChildProcess.Hymba(["quantize", ckpt.Files.Directory, "--type", p.Name, "-o", output, "--quiet", "--threads", threads],
                                new Dictionary<string, string> { ["HYMBA_CACHE_DIR"] = cache });
                            Add(runs, $"quantize {p.Name} ({label})", Checked(p.Name, run));
                            File.Delete(output);
                        }
                        if (Directory.Exists(coldCache)) Directory.Delete(coldCache, recursive: true);
                    }
                }
            }
            finally
            {
                TemporaryPaths.Delete(root);
            }
            stdout.Write(ConvertBenchTable(ckpt.Files.Directory, inputBytes, n, runs, llamaGguf));
            return ExitCodes.Success;
        }));
        return command;
    }

    private static void Add(Dictionary<string, List<ChildProcess.Run>> runs, string row, ChildProcess.Run run)
    {
        if (!runs.TryGetValue(row, out var list)) runs[row] = list = [];
        list.Add(run);
    }

    internal static ChildProcess.Run Checked(string what, ChildProcess.Run run) => run.ExitCode == 0 ? run
        : throw new InvalidOperationException($"{what} exited {run.ExitCode}: {run.Stderr.Split('\n').FirstOrDefault()}");

    private static string ConvertBenchTable(string checkpoint, long inputBytes, int repeats, Dictionary<string, List<ChildProcess.Run>> runs, string? llamaInput)
    {
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToList();
            return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
        }
        double Wall(string row) => Median(runs[row].Select(r => r.Wall.TotalSeconds));
        double copySeconds = Wall("cp"), durableCopySeconds = Wall("cp+sync");
        bool withLlama = llamaInput is not null;
        var headers = new List<string> { "what", "wall (median)", "input MB/s", "peak RSS (median)", "wall / cp", "wall / cp+sync" };
        if (withLlama) headers.Add("wall / llama-quantize");
        var table = new TextTable([.. headers]);
        foreach (var (name, list) in runs)
        {
            double seconds = Wall(name);
            var peaks = list.Where(r => r.PeakResidentBytes is not null).Select(r => (double)r.PeakResidentBytes!.Value).ToList();
            var row = new List<string>
            {
                name switch { "cp" => "cp (plain copy)", "cp+sync" => "cp + sync (copy flushed to disk)", _ => name }, $"{seconds:F2} s", $"{inputBytes / 1e6 / seconds:F0}",
                peaks.Count > 0 ? $"{Median(peaks) / (1 << 20):F0} MiB" : "-", $"{seconds / copySeconds:F2}x", $"{seconds / durableCopySeconds:F2}x",
            };
            if (withLlama)
            {
                // The llama-quantize row of the same preset, when there is one.
                string? preset = name.StartsWith("quantize ", StringComparison.Ordinal) ? name["quantize ".Length..].Split(' ')[0] : null;
                row.Add(preset is not null && LlamaTypes.TryGetValue(preset, out var t) && runs.ContainsKey($"llama-quantize {t}")
                    ? $"{seconds / Wall($"llama-quantize {t}"):F2}x" : "-");
            }
            table.Add([.. row]);
        }
        string llamaNote = withLlama ? $"; llama-quantize on {llamaInput} ({new FileInfo(llamaInput!).Length / 1e6:N1} MB)" : "";
        return $"bench convert {checkpoint}: {inputBytes / 1e6:N1} MB input, {repeats} alternating run(s), {ComputeThreads.Count} thread(s){llamaNote}\n" +
               "peak RSS: the kernel's high-water mark (file-backed pages included); hymba reports its own, other programs are sampled every 5 ms\n" + table;
    }

    private static Command Quantize(TextWriter stdout, TextWriter stderr)
    {
        var rows = new Option<int>("--rows") { Description = "Matrix rows", DefaultValueFactory = _ => 1024 };
        var cols = new Option<int>("--cols") { Description = "Matrix columns (a multiple of 256)", DefaultValueFactory = _ => 4096 };
        var repeats = new Option<int>("--repeats") { Description = "Timed repeats (median reported)", DefaultValueFactory = _ => 5 };
        var command = new Command("quantize", "Quantize throughput (MB/s of float32 input) per ggml type, production path vs a single-threaded row-by-row baseline") { rows, cols, repeats };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
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
        var checkpoint = new Argument<string>("checkpoint") { Description = "HuggingFace checkpoint directory (for example one written by `hymba init --preset 1.5b`)" + CheckpointInput.HubHelp };
        var tokens = new Option<int[]>("--tokens") { Description = "Prefill lengths in text tokens (repeatable)", DefaultValueFactory = _ => [128, 1024], AllowMultipleArgumentsPerToken = true };
        var decode = new Option<int>("--decode") { Description = "Decode steps to time", DefaultValueFactory = _ => 32 };
        var repeats = new Option<int>("--repeats") { Description = "Timed repeats per measurement (after one warm-up); the median is reported", DefaultValueFactory = _ => 5 };
        var command = new Command("forward", "Time the reference forward pass (prefill, decode) against its projection GEMMs alone on the same shapes")
        {
            checkpoint, tokens, decode, repeats,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            var lengths = parse.GetValue(tokens)!;
            if (lengths.Length == 0 || lengths.Any(l => l < 1)) throw new InvalidRequestException("--tokens", "expected positive token counts");
            int r = parse.GetValue(repeats);
            if (r < 1) throw new InvalidRequestException("--repeats", $"{r}, expected >= 1");
            using var ckpt = HymbaCheckpoint.Open(CheckpointInput.Resolve(parse.GetValue(checkpoint)!, stderr), new CheckpointReadOptions { ScanNonFinite = false });
            stderr.WriteLine("loading weights as float32 ...");
            using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
            var result = ForwardBenchmark.Run(model, lengths, parse.GetValue(decode), r, message => stderr.WriteLine(message));
            stdout.Write(result.ToText());
            return ExitCodes.Success;
        }));
        return command;
    }
}
