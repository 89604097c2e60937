using System.CommandLine;
using HymbaTools.Benchmarks;
using HymbaTools.Common;
using HymbaTools.Formats.Gguf;
using HymbaTools.Formats.Onnx;
using HymbaTools.Model;
using HymbaTools.Runtime;

namespace HymbaTools.Cli.Commands;

/// <summary>`hymba bench onnx`: an export in hymba's runner, onnxruntime-genai, the reference and llama.cpp, alternating.</summary>
internal static class BenchOnnxCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var source = new Argument<string>("source") { Description = "An ONNX export directory, or a HuggingFace checkpoint directory to export --types from (for example one written by `hymba init --preset 1.5b`)" + CheckpointInput.HubHelp };
        var types = new Option<string>("--types") { Description = "Export types to time when the source is a checkpoint, comma-separated (f32, f16, int8, int4)", DefaultValueFactory = _ => "int4" };
        var prompt = new Option<int>("--prompt") { Description = "Tokens of the short prompt whose first call is timed (decode follows it)", DefaultValueFactory = _ => 16 };
        var prefill = new Option<int>("--prefill") { Description = "Tokens of the long prompt whose prefill rate is timed", DefaultValueFactory = _ => 512 };
        var decode = new Option<int>("--decode") { Description = "Tokens decoded at batch 1 and timed (after the short prompt, or after each --depth)", DefaultValueFactory = _ => 32 };
        var depth = new Option<string>("--depth")
        {
            Description = "Context depths, comma-separated (as llama-bench's -d): 0 times the short prompt, prefill and decode after it; N > 0 processes N context tokens first (untimed), " +
                          "then times decode and reports the state each runtime holds there. depth + decode must fit the model's context",
            DefaultValueFactory = _ => "0",
        };
        var chunk = new Option<int>("--chunk") { Description = "Context tokens per call while reaching a --depth (bounds the score matrices a call holds)", DefaultValueFactory = _ => 512 };
        var rounds = new Option<int>("--rounds") { Description = "Alternating rounds (every runtime once per round, after a warm-up round); medians are reported", DefaultValueFactory = _ => 3 };
        var accuracy = new Option<int>("--accuracy-level") { Description = "MatMulNBits accuracy_level of int8/int4 exports made here (0 or 4)", DefaultValueFactory = _ => 4 };
        var blockSize = new Option<int>("--block-size") { Description = "MatMulNBits block size of int8/int4 exports made here", DefaultValueFactory = _ => 32 };
        var stateType = new Option<string>("--state-dtype") { Description = "K/V element type of exports made here (f16 or f32)", DefaultValueFactory = _ => "f16" };
        var noGenAi = new Option<bool>("--no-genai") { Description = "Skip onnxruntime-genai's Generator (timed by default: it is what deployers run)" };
        var noReference = new Option<bool>("--no-reference") { Description = "Skip the TorchSharp reference (it needs the model in float32 memory and is slow at 1.5B; never timed at a depth)" };
        var llamaBench = new Option<string?>("--llama-bench") { Description = "llama.cpp's llama-bench binary: time --llama-model with it in the same alternating rounds and print the ratios" };
        var llamaModel = new Option<string?>("--llama-model") { Description = "The GGUF llama-bench runs (a Q4_0 Llama of the same size, see the README)" };
        var work = new Option<string?>("--work") { Description = "Directory for the temporary exports (default: the system temp directory); removed afterwards" };
        var profile = new Option<bool>("--profile") { Description = "After the rounds, run each export once more under ONNX Runtime's profiler and print the kernel time per op type for the first call, decode and prefill" };
        var command = new Command("onnx",
            "What users of an export feel, runtime by runtime in alternating rounds: the first call on a short prompt, prefill tokens/s of a long prompt and decode tokens/s at batch 1, " +
            "and decode tokens/s after a long context (--depth) with the state each runtime holds there; in hymba's runner, in onnxruntime-genai and (optionally) in the TorchSharp " +
            "reference and llama.cpp's llama-bench on a same-size model, with the decode bound from the measured DRAM read bandwidth")
        {
            source, types, prompt, prefill, decode, depth, chunk, rounds, accuracy, blockSize, stateType, noGenAi, noReference, llamaBench, llamaModel, work, profile,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            int promptTokens = parse.GetValue(prompt), prefillTokens = parse.GetValue(prefill), decodeTokens = parse.GetValue(decode), n = parse.GetValue(rounds), chunkTokens = parse.GetValue(chunk);
            foreach (var (option, value) in new[] { ("--prompt", promptTokens), ("--prefill", prefillTokens), ("--decode", decodeTokens), ("--rounds", n), ("--chunk", chunkTokens) })
                if (value < 1) throw new InvalidRequestException(option, $"{value}, expected >= 1");
            var depths = ParseDepths(parse.GetValue(depth)!);
            var keyValueType = ExportCommand.ParseStateType(parse.GetValue(stateType)!);
            string? llamaBinary = parse.GetValue(llamaBench), llamaGguf = parse.GetValue(llamaModel);
            if ((llamaBinary is null) != (llamaGguf is null)) throw new InvalidRequestException(llamaBinary is null ? "--llama-bench" : "--llama-model", "give --llama-bench and --llama-model together");
            if (llamaBinary is not null && !File.Exists(llamaBinary)) throw new InvalidRequestException("--llama-bench", $"{llamaBinary}: no such file");
            if (llamaGguf is not null && !GgufFile.IsGguf(llamaGguf)) throw new InvalidRequestException("--llama-model", $"{llamaGguf}: not a GGUF file");
            string path = CheckpointInput.Resolve(parse.GetValue(source)!, stderr);
            bool isExport = OnnxRunner.IsOnnxDirectory(path);
            var exportTypes = isExport ? [] : parse.GetValue(types)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => Enum.TryParse<OnnxExportType>(t, ignoreCase: true, out var v) ? v : throw new InvalidRequestException("--types", $"'{t}' (expected f32, f16, int8 or int4)")).ToList();
            int threads = ComputeThreads.Count;
            string root = TemporaryPaths.Beside(Path.Combine(Path.GetFullPath(parse.GetValue(work) ?? Path.GetTempPath()), "hymba-bench-onnx"));
            var results = new List<(string Name, IReadOnlyList<OnnxBenchmark.Sample> Rounds, long? WeightBytesPerToken)>();
            var llamaRounds = new List<LlamaBenchResult.Figures>();
            var depthTables = new List<string>();
            OnnxBenchmark.Workload? workload = null;
            var profiles = new List<string>();
            try
            {
                // Every export to time: the given directory, or the types exported here from the checkpoint.
                var exports = new List<(string Name, string Directory, long WeightBytes)>();
                using (var input = isExport ? null : ArtifactLoader.OpenExportSource(path, stderr))
                {
                    var config = isExport ? HymbaConfig.Load(Path.Combine(path, "config.json")) : input!.Source.Tensors.Config;
                    // genai decodes every round's tokens after the same context (it cannot restore a recurrent state).
                    int decodedAfterDepth = parse.GetValue(noGenAi) ? decodeTokens : (n + 1) * decodeTokens;
                    foreach (int d in depths.Where(d => d > 0 && (long)d + decodedAfterDepth > config.MaxPositionEmbeddings))
                        throw new InvalidRequestException("--depth", $"{d} context + {decodedAfterDepth} decoded tokens ({(parse.GetValue(noGenAi) ? "--decode" : "--decode for the warm-up and each round in genai's one sequence")}) exceed the model's context of {config.MaxPositionEmbeddings} (max_position_embeddings); at most {config.MaxPositionEmbeddings - decodedAfterDepth}");
                    workload = new OnnxBenchmark.Workload(promptTokens, prefillTokens, decodeTokens, config.VocabSize);
                    if (isExport)
                    {
                        using var probe = OnnxRunner.Open(path, threads);
                        var type = Enum.Parse<OnnxExportType>(probe.ExportType, ignoreCase: true);
                        int block = int.Parse(probe.Metadata.GetValueOrDefault(HymbaOnnxNames.MetaBlockSize, "32"), System.Globalization.CultureInfo.InvariantCulture);
                        exports.Add((probe.ExportType, path, OnnxBenchmark.OnnxWeightBytesPerToken(probe.Config, type, block)));
                    }
                    else
                    {
                        Directory.CreateDirectory(root);
                        foreach (var type in exportTypes)
                        {
                            string name = type.ToString().ToLowerInvariant();
                            stderr.WriteLine($"exporting {name} ...");
                            var options = new OnnxExportOptions { Type = type, AccuracyLevel = parse.GetValue(accuracy), BlockSize = parse.GetValue(blockSize), StateType = keyValueType };
                            exports.Add((name, OnnxExporter.Export(input!.Source, Path.Combine(root, name), options).Directory, OnnxBenchmark.OnnxWeightBytesPerToken(config, type, options.BlockSize)));
                        }
                    }
                }
                foreach (var (name, directory, weightBytes) in exports)
                {
                    stderr.WriteLine($"loading {name} in hymba's runner{(parse.GetValue(noGenAi) ? "" : " and onnxruntime-genai")} ...");
                    using var runner = OnnxRunner.Open(directory, threads);
                    using var genai = parse.GetValue(noGenAi) ? null : new GenAiBenchmark(directory, threads);
                    if (depths.Contains(0))
                    {
                        var hymbaRounds = new List<OnnxBenchmark.Sample>();
                        var genaiRounds = new List<OnnxBenchmark.Sample>();
                        for (int r = -1; r < n; r++)
                        {
                            // Round -1 warms every runtime up (first kernels, allocations); its figures are not kept.
                            stderr.WriteLine(r < 0 ? $"{name}: warm-up round" : $"{name}: round {r + 1}/{n}");
                            var hymbaSample = OnnxBenchmark.Measure(runner, workload!);
                            var genaiSample = genai?.Measure(workload!);
                            var llamaSample = llamaBinary is null ? null : LlamaBench.Run(llamaBinary, LlamaBenchResult.Arguments(llamaGguf!, workload!, threads),
                                json => LlamaBenchResult.Parse(json, workload!, $"llama.cpp {Path.GetFileName(llamaGguf)}"));
                            if (r < 0) continue;
                            hymbaRounds.Add(hymbaSample);
                            if (genaiSample is not null) genaiRounds.Add(genaiSample);
                            if (llamaSample is not null) llamaRounds.Add(llamaSample);
                        }
                        results.Add(($"hymba runner, {name}", hymbaRounds, weightBytes));
                        if (genaiRounds.Count > 0) results.Add(($"onnxruntime-genai, {name}", genaiRounds, weightBytes));
                    }
                    foreach (int d in depths.Where(d => d > 0))
                        depthTables.Add(MeasureAtDepth(name, runner, genai, new DepthBenchmark.Workload(d, decodeTokens, chunkTokens, runner.Config.VocabSize), n, threads, llamaBinary, llamaGguf, stderr));
                    if (parse.GetValue(profile) && depths.Contains(0))
                    {
                        stderr.WriteLine($"{name}: profiling one more round");
                        profiles.Add($"ONNX Runtime profile of {name} in hymba's runner (kernel time per op type, one round after a warm-up round):\n" +
                                     ProfileRound(directory, Path.Combine(root, "profile-" + name), threads, workload!));
                    }
                }
                if (!isExport && !parse.GetValue(noReference) && depths.Contains(0))
                {
                    stderr.WriteLine("loading the reference weights as float32 ...");
                    using var input = ArtifactLoader.OpenExportSource(path, stderr);
                    using var reference = new ReferenceRunner(HymbaModel.Load(input.Source.Tensors), "reference");
                    var referenceRounds = Enumerable.Range(-1, n + 1).Select(_ => OnnxBenchmark.Measure(reference, workload!)).Skip(1).ToList();
                    results.Add(("TorchSharp reference (f32)", referenceRounds, OnnxBenchmark.OnnxWeightBytesPerToken(input.Source.Tensors.Config, OnnxExportType.F32, 32)));
                }
            }
            finally
            {
                TemporaryPaths.Delete(root);
            }
            stdout.WriteLine($"bench onnx {path}: {threads} thread(s), {n} alternating round(s) after a warm-up, medians" +
                             (llamaGguf is null ? "" : $"; llama.cpp: {llamaGguf} ({new FileInfo(llamaGguf).Length / 1e6:N0} MB)"));
            if (results.Count > 0)
            {
                stderr.WriteLine("measuring the memory read bandwidth ...");
                var bandwidth = OnnxBenchmark.MeasureReadBandwidth(threads);
                stdout.Write(OnnxBenchmark.Table(results, llamaRounds.Count > 0 ? LlamaBenchResult.Median(llamaRounds) : null, bandwidth, workload!));
            }
            foreach (var table in depthTables) stdout.Write("\n" + table);
            foreach (var table in profiles) stdout.Write("\n" + table);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static int[] ParseDepths(string text)
    {
        var depths = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => int.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int d)
                ? d : throw new InvalidRequestException("--depth", $"'{t}' (expected non-negative token counts, comma-separated)"))
            .Distinct().ToArray();
        return depths.Length > 0 ? depths : throw new InvalidRequestException("--depth", "no depth given");
    }

    /// <summary>
    /// Decode after <paramref name="work"/>'s context in every runtime, alternating rounds after a warm-up round: hymba's
    /// runner from its saved state, genai continuing its sequence, llama-bench with -d in a process per round.
    /// </summary>
    private static string MeasureAtDepth(string name, OnnxRunner runner, GenAiBenchmark? genai, DepthBenchmark.Workload work, int rounds, int threads,
        string? llamaBinary, string? llamaGguf, TextWriter stderr)
    {
        stderr.WriteLine($"{name}: {work.Depth:N0} context tokens in hymba's runner ...");
        var hymba = new DepthBenchmark.HymbaSide(runner, work);
        if (genai is not null) stderr.WriteLine($"{name}: {work.Depth:N0} context tokens in onnxruntime-genai ...");
        using var genaiSide = genai is null ? null : new DepthBenchmark.GenAiSide(genai, runner, work, rounds);
        var hymbaRounds = new List<DepthBenchmark.Sample>();
        var genaiRounds = new List<DepthBenchmark.Sample>();
        var llamaRounds = new List<double>();
        for (int r = -1; r < rounds; r++)
        {
            stderr.WriteLine(r < 0 ? $"{name} at depth {work.Depth:N0}: warm-up round" : $"{name} at depth {work.Depth:N0}: round {r + 1}/{rounds}");
            var hymbaSample = hymba.Measure();
            var genaiSample = genaiSide?.Measure();
            double? llamaRate = llamaBinary is null ? null : LlamaBench.Run(llamaBinary, LlamaBenchResult.DepthArguments(llamaGguf!, work, threads), json => LlamaBenchResult.ParseDepth(json, work));
            if (r < 0) continue;
            hymbaRounds.Add(hymbaSample);
            if (genaiSample is not null) genaiRounds.Add(genaiSample);
            if (llamaRate is { } rate) llamaRounds.Add(rate);
        }
        var runtimes = new List<(string, IReadOnlyList<DepthBenchmark.Sample>, long, string)>
        {
            ($"hymba runner, {name}", hymbaRounds, hymba.StateBytes, "measured: the pasts it feeds back"),
        };
        if (genaiSide is not null) runtimes.Add(($"onnxruntime-genai, {name}", genaiRounds, genaiSide.StateBytes, "measured: its presents"));
        (string, IReadOnlyList<double>, long, string)? llama = null;
        if (llamaGguf is not null)
        {
            using var model = GgufFile.Open(llamaGguf);
            llama = ($"llama.cpp {Path.GetFileName(llamaGguf)}", llamaRounds, LlamaBenchResult.CacheBytes(model, work.Depth + work.DecodeTokens),
                "from the GGUF's shapes: f16 K and V of every layer");
        }
        return DepthBenchmark.Table(work, runtimes, llama);
    }

    /// <summary>
    /// Two measured rounds in a profiled session; the second one's runs (the first call, each decode step, the
    /// prefill) read back from ONNX Runtime's trace, which is removed with the work directory.
    /// </summary>
    private static string ProfileRound(string directory, string prefix, int threads, OnnxBenchmark.Workload work)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(prefix)!);
        string trace;
        using (var runner = OnnxRunner.Open(directory, threads, prefix))
        {
            OnnxBenchmark.Measure(runner, work);
            OnnxBenchmark.Measure(runner, work);
            trace = runner.EndProfiling();
        }
        int perRound = 1 + work.DecodeTokens + 1, second = perRound;
        try
        {
            return OnnxProfile.Table(OnnxProfile.Read(trace,
            [
                ($"first call ({work.PromptTokens})", new Range(second, second + 1)),
                ("decode", new Range(second + 1, second + 1 + work.DecodeTokens)),
                ($"prefill ({work.PrefillTokens})", new Range(second + 1 + work.DecodeTokens, second + perRound)),
            ], OnnxProfile.MatMulNBitsWidths(Path.Combine(directory, HymbaOnnxNames.ModelFile))));
        }
        finally { File.Delete(trace); }
    }

    /// <summary>llama.cpp's llama-bench as a child process: one run (its own warm-up included), its JSON read by the given parser.</summary>
    private static class LlamaBench
    {
        public static T Run<T>(string binary, IEnumerable<string> arguments, Func<string, T> parse)
        {
            var info = new System.Diagnostics.ProcessStartInfo(binary);
            foreach (var a in arguments) info.ArgumentList.Add(a);
            var run = BenchCommand.Checked("llama-bench", ChildProcess.Start(info));
            try { return parse(run.Stdout); }
            catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidRequestException("--llama-bench", $"{binary}: its JSON output could not be read ({e.Message})");
            }
        }
    }
}
