using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Formats.Gguf;
using HymbaTools.Formats.Onnx;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Reports;
using HymbaTools.Runtime;
using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;
using HymbaTools.Text;
using HymbaTools.Verification;

namespace HymbaTools.Tests.Fuzzing;

/// <summary>
/// Every parser, fed mutations of a valid input (see <see cref="Mutator"/>), either loads it or refuses it with an
/// input error (exit 2 in the CLI): never another exception, a hang (10 s per input) or an allocation out of
/// proportion to the file. A few hundred mutations per parser here with a fixed seed;
/// <c>HYMBA_FUZZ_ITERATIONS=10000 bash tests/fuzz.sh</c> runs many more. A failing seed is printed with its mutation
/// and goes into <see cref="Regressions"/>.
/// </summary>
public sealed class ParserFuzzTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static int Iterations => int.TryParse(Environment.GetEnvironmentVariable("HYMBA_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : 200;
    private static string ExampleModel => Path.Combine(AppContext.BaseDirectory, "example-model");

    /// <summary>A parser under test: where its input lives in a prepared directory and how it is exercised.</summary>
    private sealed record Target(string Name, Func<TempDir, string> Prepare, string File, Action<string> Exercise);

    private static readonly Target[] Targets =
    [
        new("safetensors", d => d.CopyOf(Fixtures.TinyA, "safetensors"), "model.safetensors", dir =>
        {
            using var file = SafetensorsFile.Open(Path.Combine(dir, "model.safetensors"));
            foreach (var t in file.Tensors) t.ToFloat32Array();
        }),
        new("safetensors-index", d => d.CopyOf(Fixtures.TinyB, "index"), SafetensorsIndex.FileName, dir =>
        {
            using var checkpoint = HymbaCheckpoint.Open(dir);
        }),
        new("config.json", d => d.CopyOf(Fixtures.TinyA, "config"), "config.json", dir =>
        {
            using var checkpoint = HymbaCheckpoint.Open(dir);
        }),
        new("tokenizer.model", d => d.CopyOf(ExampleModel, "tokenizer-model"), "tokenizer.model", ExerciseTokenizer),
        new("tokenizer_config.json", d => d.CopyOf(ExampleModel, "tokenizer-config"), "tokenizer_config.json", ExerciseTokenizer),
        new("added_tokens.json", d => d.CopyOf(ExampleModel, "added-tokens"), "added_tokens.json", ExerciseTokenizer),
        new("gguf", PrepareGguf, "model.gguf", dir =>
        {
            using var source = GgufTensorSource.Open(Path.Combine(dir, "model.gguf"));
            foreach (var t in HymbaTensorCatalog.For(source.Config))
                if (source.Contains(t.Name)) source.CopyToFloat32(t.Name, new float[t.ElementCount]);
            if (GgufTokenizerMetadata.Read(source.File) is { } tokens) HymbaTokenizer.From(tokens, "model.gguf").Encode("Emma");
        }),
        new("golden", d => d.CopyOf(Fixtures.TinyA, "golden"), "golden.safetensors", dir =>
        {
            GoldenData.Load(Path.Combine(dir, "golden.safetensors"), 512); // tiny-a's vocabulary
        }),
        new("imatrix", PrepareImatrix, "imatrix.safetensors", dir =>
        {
            ImportanceMatrix.Load(Path.Combine(dir, "imatrix.safetensors"));
        }),
        new("onnx config.json", PrepareOnnx, "config.json", dir =>
        {
            using var runner = OnnxRunner.Open(dir);
        }),
        new("genai_config.json", PrepareOnnx, HymbaOnnxNames.GenAiConfigFile, dir =>
        {
            ArtifactDescription.Of(dir);
        }),
    ];

    private static void ExerciseTokenizer(string dir)
    {
        var tokenizer = HymbaTokenizer.Load(dir);
        var ids = tokenizer.Encode("Emma Woodhouse, handsome, clever, and rich.");
        tokenizer.Decode(ids);
        // What an ONNX export writes from the same files.
        var files = TokenizerFiles.Read(dir);
        HuggingFaceTokenizerJson.CheckSupported(files, dir);
        HuggingFaceTokenizerJson.Tokenizer(files);
        HuggingFaceTokenizerJson.Config(files);
    }

    private static string PrepareGguf(TempDir d)
    {
        string dir = Directory.CreateDirectory(d.File("gguf")).FullName;
        using var checkpoint = HymbaCheckpoint.Open(ExampleModel);
        GgufExporter.Export(checkpoint, Path.Combine(dir, "model.gguf"), new GgufExportOptions { Preset = QuantizationPreset.Find("q4_0")!, HashSources = false });
        return dir;
    }

    private static string PrepareImatrix(TempDir d)
    {
        string dir = Directory.CreateDirectory(d.File("imatrix")).FullName;
        string tokens = Path.Combine(dir, "tokens.txt");
        File.WriteAllText(tokens, string.Join(' ', Enumerable.Range(0, 64).Select(i => (i * 37) % 512)));
        var r = CliRunner.Run("imatrix", Fixtures.TinyA, "--tokens", tokens, "--chunk", "16", "--chunks", "4", "-o", Path.Combine(dir, "imatrix.safetensors"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        return dir;
    }

    private static string PrepareOnnx(TempDir d)
    {
        string dir = d.File("onnx-" + Guid.NewGuid().ToString("N")[..8]);
        Assert.Equal(0, CliRunner.Run("export", Fixtures.TinyA, "-o", dir).ExitCode);
        return dir;
    }

    public static IEnumerable<object[]> TargetNames() => Targets.Select(t => new object[] { t.Name });

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void Mutated_inputs_load_or_fail_with_an_input_error(string name)
    {
        var target = Targets.Single(t => t.Name == name);
        string dir = target.Prepare(_dir);
        string path = Path.Combine(dir, target.File);
        byte[] valid = File.ReadAllBytes(path);
        target.Exercise(dir); // the unmutated input loads
        var failures = new List<string>();
        int baseSeed = StableHash(name);
        for (int i = 0; i < Iterations && failures.Count < 5; i++)
        {
            int seed = baseSeed + i;
            var (bytes, description) = Mutator.Mutate(valid, seed);
            if (Run(target, dir, path, bytes) is { } failure) failures.Add($"seed {seed} ({description}): {failure}");
        }
        File.WriteAllBytes(path, valid);
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} mutation(s) broke the parser:\n" + string.Join("\n", failures));
    }

    /// <summary>Seeds that once broke a parser (target, seed): each must now load or fail with an input error.</summary>
    public static IEnumerable<object[]> Regressions() =>
    [
        ["safetensors", 795308746],         // data_offsets holding a string: InvalidOperationException from TryGetInt64
        ["safetensors-index", 571243046],   // invalid UTF-8 in a key, found only when the key was read
        ["tokenizer_config.json", 60677000], // the same, in tokenizer_config.json
        ["added_tokens.json", 287822938],   // the same, in added_tokens.json
        ["tokenizer.model", 254893446],     // a malformed protobuf reached Microsoft.ML.Tokenizers
        ["tokenizer.model", 254893503],     // a truncated model without trainer_spec: NullReferenceException inside it
        ["tokenizer.model", 254893576],     // an end-group tag without its start
        ["genai_config.json", 518279703],   // a duplicated key: ArgumentException from JsonObject
        ["onnx config.json", 353325308],    // a conv_dim value turned into a string
    ];

    [Theory]
    [MemberData(nameof(Regressions))]
    public void Former_failures_stay_fixed(string name, int seed)
    {
        var target = Targets.Single(t => t.Name == name);
        string dir = target.Prepare(_dir);
        string path = Path.Combine(dir, target.File);
        var (bytes, description) = Mutator.Mutate(File.ReadAllBytes(path), seed);
        Assert.True(Run(target, dir, path, bytes) is null, $"{name} seed {seed} ({description})");
    }

    /// <summary>Runs the parser on the bytes; null when it loaded or refused with an input error, else what went wrong.</summary>
    private static string? Run(Target target, string dir, string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        long allocated = 0;
        // A thread of its own, not the thread pool: in a full run other test classes can hold every pool thread,
        // and a parse queued behind them once took "more than 10 s" (the same seeds alone: 15-43 ms).
        var task = Task.Factory.StartNew(() =>
        {
            // Counted on the parsing thread, so tests running beside this one do not add to it.
            long before = GC.GetAllocatedBytesForCurrentThread();
            try { target.Exercise(dir); }
            finally { allocated = GC.GetAllocatedBytesForCurrentThread() - before; }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        bool finished;
        try { finished = task.Wait(TimeSpan.FromSeconds(10)); }
        catch (AggregateException e) when (e.InnerException is HymbaInputException) { return AllocationProblem(allocated, bytes.Length); }
        catch (AggregateException e) { return $"{e.InnerException!.GetType().Name}: {e.InnerException.Message.Split('\n')[0]}"; }
        if (!finished) return "no answer within 10 s";
        return AllocationProblem(allocated, bytes.Length);
    }

    /// <summary>Allocation stays proportional to the input: never a buffer sized by a field the file merely claims.</summary>
    private static string? AllocationProblem(long allocated, long inputBytes)
    {
        long bound = 64 * inputBytes + (64L << 20);
        return allocated > bound ? $"allocated {allocated:N0} bytes for a {inputBytes:N0}-byte input (bound {bound:N0})" : null;
    }

    private static int StableHash(string text) => text.Aggregate(17, (h, c) => unchecked(h * 31 + c)) & 0x3FFFFFFF;
}
