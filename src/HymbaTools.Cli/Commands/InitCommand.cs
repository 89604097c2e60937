using System.CommandLine;
using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Synthetic;

namespace HymbaTools.Cli.Commands;

internal static class InitCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var directory = new Argument<string>("dir") { Description = "Output directory for the checkpoint: new, empty, or one init wrote before (replaced whole: exactly the new checkpoint's files); anything else needs --force" };
        var preset = new Option<string>("--preset")
        {
            Description = "Model shape: " + string.Join("; ", CheckpointPreset.All.Select(p => $"{p.Name} = {p.Description}")),
            Required = true,
        };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the random weights (same seed, same bytes)", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { Description = "Stored dtype: f32, bf16 or f16", DefaultValueFactory = _ => "bf16" };
        var shards = new Option<int>("--shards") { Description = "Number of safetensors shards (>1 writes model.safetensors.index.json)", DefaultValueFactory = _ => 1 };
        var layers = new Option<int?>("--layers") { Description = "Another number of layers with the preset's widths, laid out as Hymba-1.5B (first, middle, last global; adjacent layers share KV)" };
        var configOnly = new Option<bool>("--config-only") { Description = "Write config.json only, no weights (for inspect / cache planning)" };
        var force = new Option<bool>("--force") { Description = "Replace a non-empty directory that is not a checkpoint written by init (its contents are removed)" };
        var command = new Command("init", "Write a random-weight Hymba checkpoint in real HuggingFace layout (for tests, benchmarks and demos)")
        {
            directory, preset, layers, seed, dtype, shards, configOnly, force,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            string name = parse.GetValue(preset)!;
            var chosen = CheckpointPreset.Find(name)
                ?? throw new InvalidRequestException("--preset", $"unknown preset '{name}' (expected one of {string.Join(", ", CheckpointPreset.All.Select(p => p.Name))})");
            if (parse.GetValue(layers) is int layerCount)
            {
                if (layerCount is < 1 or > 1024) throw new InvalidRequestException("--layers", $"{layerCount}, expected 1 to 1024");
                chosen = chosen.WithLayers(layerCount);
            }
            var type = parse.GetValue(dtype) switch
            {
                "f32" or "float32" => SafetensorsDType.F32,
                "bf16" or "bfloat16" => SafetensorsDType.BF16,
                "f16" or "float16" => SafetensorsDType.F16,
                var other => throw new InvalidRequestException("--dtype", $"'{other}' is not one of f32, bf16, f16"),
            };
            int shardCount = parse.GetValue(shards);
            if (shardCount < 1) throw new InvalidRequestException("--shards", $"{shardCount}, expected >= 1");
            bool replace = parse.GetValue(force);
            string dir = OutputPaths.CheckDirectory(parse.GetValue(directory)!, "dir", replace, RandomCheckpointWriter.PreviousOutput);
            var options = new RandomCheckpointOptions(chosen, parse.GetValue(seed), type, shardCount) { ConfigOnly = parse.GetValue(configOnly) };
            IReadOnlyList<string> written = [];
            using (var progress = new ConsoleProgress(stderr, $"init {chosen.Name}"))
            {
                // Written beside and moved into place: an earlier checkpoint's shards and index do not survive beside the
                // new files. The directory itself stays (`init .` in a shell), config.json moved in last.
                OutputPaths.WriteDirectory(dir, replace, staging => written = [.. RandomCheckpointWriter.Write(staging, options, progress).Select(f => Path.GetFileName(f))],
                    "dir", RandomCheckpointWriter.PreviousOutput, keepDirectory: true, last: CheckpointDirectory.ConfigFileName);
                progress.Complete();
            }
            stdout.WriteLine($"wrote {chosen.Name} checkpoint to {dir}:");
            foreach (var file in written) stdout.WriteLine($"  {file} ({new FileInfo(Path.Combine(dir, file)).Length:N0} bytes)");
            return ExitCodes.Success;
        }));
        return command;
    }
}
