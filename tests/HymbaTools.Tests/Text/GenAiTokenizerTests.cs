using HymbaTools.Tests.TestData;
using HymbaTools.Text;
using GenAiTokenizer = Microsoft.ML.OnnxRuntimeGenAI.Tokenizer;

namespace HymbaTools.Tests.Text;

/// <summary>
/// The tokenizer.json / tokenizer_config.json an export carries, loaded by onnxruntime-genai 0.18's tokenizer
/// (onnxruntime-extensions inside), against hymba's tokenizer on the same tokenizer.model: the example model's small BPE
/// model and Llama-2's (what Hymba-1.5B ships, with [PAD] = 32000 added).
/// </summary>
public sealed class GenAiTokenizerFixture : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Dictionary<string, Tokenizers> _models = [];

    /// <summary>genai's tokenizer with BOS as tokenizer_config.json says (add_special_tokens on) and without (genai's default), and hymba's.</summary>
    public sealed record Tokenizers(string Directory, GenAiTokenizer WithBos, GenAiTokenizer Plain, HymbaTokenizer Hymba);

    public Tokenizers Model(string name)
    {
        lock (_models)
        {
            if (_models.TryGetValue(name, out var model)) return model;
            string source = name == "llama2"
                ? Llama2Tokenizer.CreateCheckpointTokenizer(_dir.File("llama2-checkpoint"))
                : Path.Combine(AppContext.BaseDirectory, "example-model");
            var files = TokenizerFiles.Read(source);
            string genai = Directory.CreateDirectory(_dir.File(name + "-genai")).FullName;
            File.WriteAllBytes(Path.Combine(genai, HuggingFaceTokenizerJson.TokenizerFile), HuggingFaceTokenizerJson.Tokenizer(files));
            File.WriteAllBytes(Path.Combine(genai, TokenizerFiles.ConfigFile), HuggingFaceTokenizerJson.Config(files));
            // genai's Tokenizer(path) reads genai_config.json (not the model), so these tests do not depend on the graph.
            int count = files.Vocabulary().Count;
            File.WriteAllText(Path.Combine(genai, "genai_config.json"),
                $"{{\"model\": {{\"type\": \"decoder\", \"bos_token_id\": 1, \"eos_token_id\": 2, \"pad_token_id\": {count - 1}, \"vocab_size\": {count}, \"context_length\": 4096}}}}\n");
            var withBos = new GenAiTokenizer(genai);
            // genai encodes with add_special_tokens = false unless told: then tokenizer_config.json's BOS rule applies.
            withBos.UpdateOptions(new Dictionary<string, string> { ["add_special_tokens"] = "true" });
            return _models[name] = new Tokenizers(genai, withBos, new GenAiTokenizer(genai), HymbaTokenizer.From(files, source));
        }
    }

    public void Dispose()
    {
        foreach (var m in _models.Values)
        {
            m.WithBos.Dispose();
            m.Plain.Dispose();
        }
        _dir.Dispose();
    }
}

public class GenAiTokenizerTests(GenAiTokenizerFixture fixture) : IClassFixture<GenAiTokenizerFixture>
{
    public static TheoryData<string> Models => ["example", "llama2"];

    /// <summary>Inputs where genai and hymba must give the same ids (and SentencePiece does too; see spm-reference.tsv).</summary>
    public static readonly string[] EdgeCases =
    [
        "", " ", "  ", "   three leading spaces", "a  b", "a   b    c", "trailing ", "trailing   ",
        "line1\nline2", "\n", "\n\nstarts with newlines", "ends with a newline\n", "a\r\nb", "  \n  ", "tab\there", "\t\tindented",
        "digits 1234567890 and 3.14", "2,500 pounds", "In 1814",
        "emoji \U0001F600 here", "CJK 中文字符 text", "日本語のテキスト", new string('中', 150), "naïve café — “smart quotes”",
        "\u0007 bell", "\uE000 private use", "\uFFFD replacement", "combining e\u0301", "ﬁ ligature", "Ⅻ",
        "[PAD]", "[PAD] starts with an added token", "[PAD]y", "a[PAD]", "[PAD][PAD]", "Hello [PAD]", "[PAD]\nline", "[PAD]  two",
        "....", "-------", "ssss", "mmmmmm", "!!!!!!!!", new string(' ', 20) + "x", "a" + new string(' ', 33) + "b",
        "x" + new string('y', 300), "Zebra quixotic jukebox xylophone 999 !!! ???",
    ];

    private static long[] Encode(GenAiTokenizer tokenizer, string text)
    {
        using var sequences = tokenizer.Encode(text);
        return sequences[0].ToArray().Select(i => (long)i).ToArray();
    }

    private static string Decode(GenAiTokenizer tokenizer, long[] ids) => tokenizer.Decode(ids.Select(i => (int)i).ToArray());

    [Theory]
    [MemberData(nameof(Models))]
    public void The_whole_evaluation_text_gets_hymbas_ids_and_decodes_back(string model)
    {
        var (_, withBos, plain, hymba) = fixture.Model(model);
        string text = EvaluationText.Read();

        long[] expected = hymba.Encode(text);
        Assert.True(expected.Length > 12_000, $"{expected.Length} ids");
        Assert.Equal(hymba.BosId, expected[0]);
        Assert.Equal(expected, Encode(withBos, text));
        Assert.Equal(hymba.Encode(text, addBos: false), Encode(plain, text));

        Assert.Equal(text, hymba.Decode(expected));
        Assert.Equal(hymba.Decode(expected), Decode(withBos, expected));
        // Without a BOS before it, genai keeps the first word's dummy-prefix space (it drops it only after a special token).
        Assert.Equal(" " + hymba.Decode(expected[1..]), Decode(plain, expected[1..]));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Edge_cases_get_hymbas_ids_and_decode_as_hymba_does(string model)
    {
        var (_, withBos, plain, hymba) = fixture.Model(model);
        var failures = new List<string>();
        foreach (string text in EdgeCases)
        {
            long[] expected = hymba.Encode(text);
            long[] got = Encode(withBos, text), gotPlain = Encode(plain, text);
            if (!expected.SequenceEqual(got) || !expected.AsSpan(1).SequenceEqual(gotPlain))
                failures.Add($"{Show(text)}: hymba [{string.Join(",", expected)}] genai [{string.Join(",", got)}] / without BOS [{string.Join(",", gotPlain)}]");
            // genai drops special tokens when decoding, as hymba does; a sequence of special tokens only decodes to U+FFFD there.
            if (expected.Skip(1).Any(id => id != hymba.PadId) && hymba.Decode(expected) != Decode(withBos, expected))
                failures.Add($"{Show(text)}: hymba decodes '{Show(hymba.Decode(expected))}', genai '{Show(Decode(withBos, expected))}'");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>
    /// What genai's tokenizer cannot reproduce, pinned so that a change on either side shows: genai (like transformers'
    /// legacy Llama tokenizer) encodes every text segment between added tokens as a text of its own, dummy prefix included,
    /// and reads the control-token spellings &lt;s&gt; &lt;/s&gt; &lt;unk&gt; in a text as those tokens; hymba prefixes the first
    /// segment only and reads control spellings as characters (as SentencePiece does). genai's C API also ends a text at NUL.
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void Known_differences_are_exactly_the_documented_ones(string model)
    {
        var (_, _, genai, hymba) = fixture.Model(model);
        long pad = hymba.PadId!.Value;
        long[] Text(string s) => hymba.Encode(s, addBos: false);

        foreach (var (text, segments) in new (string, long[][])[]
        {
            ("x[PAD]y", [Text("x"), [pad], Text("y")]),
            ("x [PAD] y", [Text("x "), [pad], Text(" y")]),
            ("<s> literal </s> tags", [[hymba.BosId], Text(" literal "), [hymba.EosId], Text(" tags")]),
            ("<unk>", [[0]]),
            ("before\0after", [Text("before")]),
        })
        {
            long[] genaiIds = segments.SelectMany(s => s).ToArray();
            Assert.Equal(genaiIds, Encode(genai, text));
            Assert.NotEqual(genaiIds, Text(text));
        }
    }

    private static string Show(string text) => (text.Length > 40 ? text[..40] + "..." : text).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal);
}
