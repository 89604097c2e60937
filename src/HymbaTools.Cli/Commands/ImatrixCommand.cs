using System.CommandLine;
using HymbaTools.Common;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Quantization.Calibration;

namespace HymbaTools.Cli.Commands;

internal static class ImatrixCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "HuggingFace checkpoint directory" + CheckpointInput.HubHelp };
        var input = new TokenInput("Calibration text (encoded with the checkpoint's tokenizer.model, or --tokenizer's)", "Calibration token ids (whitespace-separated), instead of --text", random: false);
        var chunk = new Option<int>("--chunk") { Description = "Tokens per forward pass (each chunk is a fresh sequence)", DefaultValueFactory = _ => 256 };
        var chunks = new Option<int>("--chunks") { Description = "Most chunks to run", DefaultValueFactory = _ => 64 };
        var output = new Option<string>("--output", "-o") { Description = "Importance matrix file to write (.imatrix.safetensors; an existing file is replaced only when it is an importance matrix, or with --force)", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace an existing output file that is not an importance matrix" };
        var command = new Command("imatrix", "Collect per-column importance (mean squared input activations of every linear weight) for importance-aware quantization")
        {
            checkpoint, chunk, chunks, output, force,
        };
        input.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            int chunkLength = parse.GetValue(chunk), maxChunks = parse.GetValue(chunks);
            if (chunkLength < 1) throw new InvalidRequestException("--chunk", $"{chunkLength}, expected >= 1");
            if (maxChunks < 1) throw new InvalidRequestException("--chunks", $"{maxChunks}, expected >= 1");
            input.Check(parse);
            if (parse.GetValue(input.Text) is null && parse.GetValue(input.Tokens) is null) throw new InvalidRequestException("--text", "give --text FILE or --tokens FILE");
            string outPath = OutputPaths.CheckFile(parse.GetValue(output)!, "--output", parse.GetValue(force), ImportanceMatrix.OutputKind);
            string path = CheckpointInput.Resolve(parse.GetValue(checkpoint)!, stderr);
            ArtifactKinds.Require(path, "imatrix", ArtifactKind.Checkpoint);
            using var ckpt = HymbaCheckpoint.Open(path);
            var (ids, source) = input.Read(parse, ckpt.Files.Directory, ckpt.Config.VocabSize);
            using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
            using var progress = new ConsoleProgress(stderr, "imatrix", "chunks");
            var matrix = ImportanceCollector.Collect(model, ids, chunkLength, maxChunks, source, progress, ckpt.Files.Hub?.RepoId ?? Path.GetFileName(ckpt.Files.Directory.TrimEnd('/')));
            progress.Complete();
            matrix.Save(outPath);
            stdout.WriteLine($"wrote {outPath}: {matrix.Entries.Count} tensors, {matrix.Chunks} chunks x {chunkLength} tokens from {source}");
            return ExitCodes.Success;
        }));
        return command;
    }
}
