using HymbaTools.Formats.Gguf;
using HymbaTools.Generation;
using HymbaTools.Model;
using HymbaTools.Quantization;
using HymbaTools.Runtime;
using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;
using HymbaTools.Text;

namespace HymbaTools.Tests.Text;

/// <summary>The tokenizer travels inside a GGUF file, and generated text keeps its word boundaries.</summary>
public class TokenizerRoundTripTests : IDisposable
{
    private static readonly string Model = Path.Combine(AppContext.BaseDirectory, "example-model");
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private string ExampleGguf()
    {
        string path = _dir.File("example-q8_0.gguf");
        using var checkpoint = HymbaCheckpoint.Open(Model);
        GgufExporter.Export(checkpoint, path, new GgufExportOptions { Preset = QuantizationPreset.Find("q8_0")!, HashSources = false });
        return path;
    }

    [Fact]
    public void A_tokenizer_rebuilt_from_gguf_metadata_encodes_and_decodes_as_the_checkpoints()
    {
        string gguf = ExampleGguf();
        using var file = GgufFile.Open(gguf);
        var rebuilt = HymbaTokenizer.From(GgufTokenizerMetadata.Read(file)!, gguf);
        var original = HymbaTokenizer.Load(Model);
        string text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "example-data", "persuasion.txt"))[..20000];
        var ids = original.Encode(text);
        Assert.True(ids.Length > 3000);
        Assert.Equal(ids, rebuilt.Encode(text));
        Assert.Equal(original.Decode(ids), rebuilt.Decode(ids));
        Assert.Equal((original.AddBos, original.AddEos, original.ChatTemplate), (rebuilt.AddBos, rebuilt.AddEos, rebuilt.ChatTemplate));
    }

    [Fact]
    public void Generate_on_a_gguf_file_needs_no_tokenizer_option()
    {
        string gguf = ExampleGguf();
        var run = CliRunner.Run("generate", gguf, "--prompt", "Captain Wentworth", "--temperature", "0", "--max-new-tokens", "12");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.StartsWith("Captain Wentworth", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Generated_text_keeps_the_space_before_its_first_word()
    {
        var tokenizer = HymbaTokenizer.Load(Model);
        long[] prompt = tokenizer.Encode("It is a truth universally");
        // Force the continuation " acknowledged" through a runner that always predicts the next id of that text.
        long[] continuation = tokenizer.Encode("acknowledged, that", addBos: false); // SentencePiece marks the word start itself
        using var checkpoint = HymbaCheckpoint.Open(Model);
        using var runner = new ReferenceRunner(HymbaModel.Load(new CheckpointTensorSource(checkpoint)), "example");
        var scripted = new ScriptedRunner(runner, continuation);
        var result = TextGenerator.Generate(scripted, tokenizer, prompt, continuation.Length, new SamplingOptions { Temperature = 0 });
        Assert.Equal(" acknowledged, that", result.Text);
    }

    /// <summary>A runner whose logits put all mass on a fixed script of ids (the generator's decoding is what is tested).</summary>
    private sealed class ScriptedRunner(IHymbaRunner inner, long[] script) : IHymbaRunner
    {
        public HymbaConfig Config => inner.Config;
        public string Description => "scripted";
        public string Runtime => inner.Runtime;
        public LogitsResult Forward(long[][] ids) => throw new NotSupportedException();
        public IDecodeSession StartDecode(int batch, DecodeWindowMode mode) => new Session(Config.VocabSize, script);
        public void Dispose() { }

        private sealed class Session(int vocab, long[] script) : IDecodeSession
        {
            private int _step;
            public LogitsResult Step(long[][] ids)
            {
                var logits = new float[ids[0].Length * vocab];
                logits[(ids[0].Length - 1) * vocab + (int)script[Math.Min(_step++, script.Length - 1)]] = 1f;
                return new LogitsResult(logits, 1, ids[0].Length, vocab);
            }
            public void Dispose() { }
        }
    }
}
