using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;
using HymbaTools.Text;
using GenAi = Microsoft.ML.OnnxRuntimeGenAI;

namespace HymbaTools.Tests.Formats;

/// <summary>The tokenizer files of an ONNX export: written from tokenizer.model, the same from a checkpoint and from its GGUF file.</summary>
public class OnnxExportTokenizerTests : IDisposable
{
    private static readonly string Example = Path.Combine(AppContext.BaseDirectory, "example-model");
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private string Export(string source, string name)
    {
        string output = _dir.File(name);
        var run = CliRunner.Run("export", source, "--format", "onnx", "--type", "int4", "-o", output, "--quiet");
        Assert.True(run.ExitCode == 0, run.Stderr);
        return output;
    }

    [Fact]
    public void A_checkpoint_export_and_a_gguf_export_carry_the_same_tokenizer_files_written_from_tokenizer_model()
    {
        // A checkpoint's own tokenizer.json is not what hymba tokenizes with: the export writes its own.
        string checkpoint = _dir.CopyOf(Example, "checkpoint");
        File.WriteAllText(Path.Combine(checkpoint, HuggingFaceTokenizerJson.TokenizerFile), "{\"model\": {\"type\": \"WordPiece\"}}\n");
        string gguf = _dir.File("example.gguf");
        var quantize = CliRunner.Run("quantize", checkpoint, "--type", "f16", "-o", gguf, "--quiet");
        Assert.True(quantize.ExitCode == 0, quantize.Stderr);

        string fromCheckpoint = Export(checkpoint, "from-checkpoint");
        string fromGguf = Export(gguf, "from-gguf");

        var files = TokenizerFiles.Read(Example);
        byte[] tokenizerJson = HuggingFaceTokenizerJson.Tokenizer(files);
        Assert.True(tokenizerJson.Length > 100_000);
        foreach (string export in new[] { fromCheckpoint, fromGguf })
        {
            Assert.Equal(tokenizerJson, File.ReadAllBytes(Path.Combine(export, HuggingFaceTokenizerJson.TokenizerFile)));
            Assert.Equal(HuggingFaceTokenizerJson.Config(files), File.ReadAllBytes(Path.Combine(export, TokenizerFiles.ConfigFile)));
        }
        // hymba reads either export's tokenizer as the checkpoint's (BOS rule and chat template included).
        string text = EvaluationText.Read()[..4000];
        var original = HymbaTokenizer.Load(Example);
        foreach (string export in new[] { fromCheckpoint, fromGguf })
        {
            var reread = HymbaTokenizer.Load(export);
            Assert.Equal(original.Encode(text), reread.Encode(text));
            Assert.Equal((original.AddBos, original.AddEos, original.ChatTemplate), (reread.AddBos, reread.AddEos, reread.ChatTemplate));
        }
    }

    /// <summary>The README's genai loop on an export, tokenizer included: genai's ids, tokens and text are hymba's.</summary>
    [Fact]
    public void Genai_runs_the_readme_loop_on_an_export_with_its_tokenizer_and_gets_hymbas_prompt_ids_and_text()
    {
        string export = Export(Example, "genai");
        using var model = new GenAi.Model(export);
        using var tokenizer = new GenAi.Tokenizer(model);
        tokenizer.UpdateOptions(new Dictionary<string, string> { ["add_special_tokens"] = "true" });
        var hymba = HymbaTokenizer.Load(export);
        string text = EvaluationText.Read();
        using (var all = tokenizer.Encode(text))
            Assert.Equal(hymba.Encode(text), all[0].ToArray().Select(id => (long)id));

        const string prompt = "Captain Wentworth";
        var run = CliRunner.Run("generate", export, "--prompt", prompt, "--temperature", "0", "--max-new-tokens", "12", "--json", "--quiet");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var expected = System.Text.Json.Nodes.JsonNode.Parse(run.Stdout)!;

        using var sequences = tokenizer.Encode(prompt);
        Assert.Equal(expected["prompt_ids"]!.AsArray().Select(n => (long)n!), sequences[0].ToArray().Select(id => (long)id));
        using var options = new GenAi.GeneratorParams(model);
        options.SetSearchOption("max_length", sequences[0].Length + 12);
        options.SetSearchOption("do_sample", false);
        using var generator = new GenAi.Generator(model, options);
        generator.AppendTokenSequences(sequences);
        using var stream = tokenizer.CreateStream();
        var generated = new System.Text.StringBuilder();
        var ids = new List<long>();
        while (!generator.IsDone())
        {
            generator.GenerateNextToken();
            int next = generator.GetNextTokens()[0];
            ids.Add(next);
            generated.Append(stream.Decode(next));
        }
        Assert.Equal(expected["generated_ids"]!.AsArray().Select(n => (long)n!), ids);
        // Streamed text keeps the space before the first generated word, as hymba's does.
        Assert.Equal(expected["text"]!.GetValue<string>(), generated.ToString());
        Assert.Equal(prompt + expected["text"]!.GetValue<string>(), tokenizer.Decode(generator.GetSequence(0)));
    }

    [Fact]
    public void Tokenizer_json_has_the_llama_layout_and_the_bos_rule()
    {
        var files = TokenizerFiles.Read(Example);
        using var json = System.Text.Json.JsonDocument.Parse(HuggingFaceTokenizerJson.Tokenizer(files));
        var root = json.RootElement;
        var model = root.GetProperty("model");
        Assert.Equal("BPE", model.GetProperty("type").GetString());
        Assert.True(model.GetProperty("byte_fallback").GetBoolean());
        Assert.Equal("<unk>", model.GetProperty("unk_token").GetString());
        Assert.Equal(files.Vocabulary().Count, model.GetProperty("vocab").EnumerateObject().Count());
        Assert.Equal(4000, model.GetProperty("vocab").GetProperty("[PAD]").GetInt32());
        // Merges in score order: the first piece SentencePiece learned ("▁t", id 259) is the first merge.
        Assert.Equal("▁ t", model.GetProperty("merges")[0].GetString());
        Assert.Equal(["<unk>", "<s>", "</s>", "[PAD]"], root.GetProperty("added_tokens").EnumerateArray().Select(t => t.GetProperty("content").GetString()));
        Assert.Equal("Prepend", root.GetProperty("normalizer").GetProperty("normalizers")[0].GetProperty("type").GetString());
        Assert.Equal("Strip", root.GetProperty("decoder").GetProperty("decoders")[3].GetProperty("type").GetString());
        Assert.Equal("<s>", root.GetProperty("post_processor").GetProperty("single")[0].GetProperty("SpecialToken").GetProperty("id").GetString());

        using var config = System.Text.Json.JsonDocument.Parse(HuggingFaceTokenizerJson.Config(files with { AddBos = false, AddEos = true }));
        Assert.False(config.RootElement.GetProperty("add_bos_token").GetBoolean());
        Assert.True(config.RootElement.GetProperty("add_eos_token").GetBoolean());
        Assert.Equal("LlamaTokenizer", config.RootElement.GetProperty("tokenizer_class").GetString());
        Assert.Equal("[PAD]", config.RootElement.GetProperty("pad_token").GetString());
    }

    [Fact]
    public void A_normaliser_genai_cannot_reproduce_is_refused_before_the_export_starts()
    {
        var files = TokenizerFiles.Read(Example);
        var nfkc = files with { Model = files.Model with { NormalizerName = "nmt_nfkc", NormalizerSpecBytes = null } };
        var e = Assert.Throws<HymbaTools.Common.InvalidCheckpointException>(() => HuggingFaceTokenizerJson.CheckSupported(nfkc, "tokenizer.model"));
        Assert.Contains("normalizer_spec.name", e.Message, StringComparison.Ordinal);
        Assert.True(e.IsUnsupported);
    }
}
