using HymbaTools.Text;

namespace HymbaTools.Tests.Text;

public class HymbaTokenizerTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "example-tokenizer");

    public static IEnumerable<object[]> Reference() =>
        File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Text", "spm-reference.tsv"))
            .Select(line => line.Split('\t')).Select(p => new object[] { p[0], p[1] });

    [Theory]
    [MemberData(nameof(Reference))]
    public void Ids_equal_the_reference_sentencepiece_tool(string text, string ids)
    {
        var tokenizer = HymbaTokenizer.Load(Dir);
        var expected = ids.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
        Assert.Equal(expected, tokenizer.Encode(text, addBos: false));
    }

    [Fact]
    public void Bos_is_added_as_configured_and_pad_is_the_added_token()
    {
        var tokenizer = HymbaTokenizer.Load(Dir);
        Assert.True(tokenizer.AddBos);
        var ids = tokenizer.Encode("Emma Woodhouse");
        Assert.Equal(tokenizer.BosId, ids[0]);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);
        Assert.Equal(4000, tokenizer.PadId);
        Assert.Equal("Emma Woodhouse", tokenizer.Decode(ids));
    }

    [Fact]
    public void Chat_template_renders_the_instruct_format()
    {
        Assert.Equal("<extra_id_0>System\nYou are a helpful assistant.\n\n<extra_id_1>User\nHi\n<extra_id_1>Assistant\n",
            ChatTemplate.Render([new ChatMessage("system", " You are a helpful assistant. "), new ChatMessage("user", "Hi")]));
        Assert.Equal("<extra_id_0>System\n\n<extra_id_1>User\nHello\n<extra_id_1>Assistant\nHi there\n",
            ChatTemplate.Render([new ChatMessage("user", "Hello"), new ChatMessage("assistant", "Hi there")], addGenerationPrompt: false));
    }

    [Fact]
    public void Missing_tokenizer_is_an_input_error() =>
        Assert.Throws<HymbaTools.Common.InvalidCheckpointException>(() => HymbaTokenizer.Load(AppContext.BaseDirectory));
}
