using System.CommandLine;
using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Text;

namespace HymbaTools.Cli;

/// <summary>
/// The evaluation (or calibration) input of a command, with the same options everywhere: --text FILE (read by
/// <see cref="TextFile"/>, --text-encoding when it is not UTF-8) encoded with --tokenizer DIR or the artifact's own
/// tokenizer (a GGUF file's tokenizer.ggml.* metadata included), --tokens FILE, --random-tokens N when offered, else
/// the built-in evaluation text when there is a tokenizer. The report says which was used.
/// </summary>
internal sealed class TokenInput
{
    public Option<string?> Text { get; }
    public Option<string?> TextEncoding { get; } = new("--text-encoding") { Description = $"Encoding of --text ({TextFile.EncodingNames}; default utf-8: invalid UTF-8 is an error naming its byte offset)" };
    public Option<string?> Tokens { get; }
    public Option<string?> Tokenizer { get; } = new("--tokenizer") { Description = "Directory with tokenizer.model to encode text with (default: the artifact's own: its directory, or a .gguf file's tokenizer.ggml.* metadata)" };
    public Option<int?>? RandomTokens { get; }

    public TokenInput(string textDescription, string tokensDescription = "Evaluation token ids (whitespace-separated) instead of --text", bool random = true)
    {
        Text = new("--text") { Description = textDescription };
        Tokens = new("--tokens") { Description = tokensDescription };
        if (random) RandomTokens = new("--random-tokens") { Description = "Evaluate on N random token ids (only when asked; the report says so)" };
    }

    public void AddTo(Command command)
    {
        command.Options.Add(Text);
        command.Options.Add(TextEncoding);
        command.Options.Add(Tokens);
        command.Options.Add(Tokenizer);
        if (RandomTokens is not null) command.Options.Add(RandomTokens);
    }

    /// <summary>The options' own consistency and files, checked before any work starts.</summary>
    public void Check(ParseResult parse)
    {
        string? text = parse.GetValue(Text), tokens = parse.GetValue(Tokens), tokenizer = parse.GetValue(Tokenizer);
        if (RandomTokens is not null && parse.GetValue(RandomTokens) is { } count)
        {
            if (text is not null || tokens is not null) throw new InvalidRequestException("--random-tokens", "give one of --text, --tokens and --random-tokens");
            if (count < 2) throw new InvalidRequestException("--random-tokens", $"{count}, expected at least 2");
        }
        if (text is not null && tokens is not null) throw new InvalidRequestException("--text", "give either --text or --tokens, not both");
        if (text is not null && !File.Exists(text)) throw new InvalidRequestException("--text", $"{text}: file not found");
        if (tokens is not null && !File.Exists(tokens)) throw new InvalidRequestException("--tokens", $"{tokens}: file not found");
        if (tokenizer is not null && !TokenizerFiles.Exists(tokenizer)) throw new InvalidRequestException("--tokenizer", $"{tokenizer}: no tokenizer.model there");
        if (parse.GetValue(TextEncoding) is { } encoding)
        {
            if (text is null) throw new InvalidRequestException("--text-encoding", "applies to --text FILE, which is not given");
            TextFile.CheckEncoding(encoding, "--text-encoding");
        }
    }

    /// <summary>The ids and a description of where they came from; <paramref name="artifact"/>'s tokenizer encodes text unless --tokenizer names one.</summary>
    public (long[] Ids, string Source) Read(ParseResult parse, string artifact, int vocab, int seed = 7)
    {
        Check(parse);
        if (RandomTokens is not null && parse.GetValue(RandomTokens) is { } count)
        {
            var random = new Random(seed);
            return (Enumerable.Range(0, count).Select(_ => (long)random.Next(vocab)).ToArray(), $"{count} random token ids (seed {seed}, --random-tokens)");
        }
        if (parse.GetValue(Tokens) is { } tokensFile) return (ReadIds(tokensFile, vocab), Path.GetFileName(tokensFile));
        string? textFile = parse.GetValue(Text);
        var tokenizer = ArtifactLoader.TryTokenizer(artifact, parse.GetValue(Tokenizer))
            ?? throw new InvalidRequestException(textFile is null ? "--text" : "--tokenizer", textFile is null
                ? $"{artifact} has no tokenizer to encode the built-in evaluation text: give --tokenizer DIR, --text FILE with --tokenizer, --tokens FILE{(RandomTokens is null ? "" : " or --random-tokens N")}"
                : $"{artifact} has no tokenizer to encode {textFile} with (give --tokenizer DIR, or --tokens FILE with token ids)");
        string text = textFile is null ? EvaluationText.Read() : TextFile.Read(textFile, "--text", parse.GetValue(TextEncoding));
        var ids = tokenizer.Encode(text);
        if (ids.Any(id => id >= vocab))
            throw new InvalidRequestException("--tokenizer", $"the tokenizer of {artifact} produces ids beyond the model's vocabulary of {vocab}");
        return (ids, textFile is null ? EvaluationText.Description : Path.GetFileName(textFile));
    }

    /// <summary>
    /// Two artifacts evaluated on the same ids must read them as the same tokens: when both carry a tokenizer (and
    /// --tokenizer does not choose one), their vocabularies must be equal.
    /// </summary>
    public void CheckSameVocabulary(ParseResult parse, string a, string b, string optionB)
    {
        if (parse.GetValue(Tokenizer) is not null) return;
        if (ArtifactLoader.TryTokenizer(a, null) is not { } ta || ArtifactLoader.TryTokenizer(b, null) is not { } tb) return;
        IReadOnlyList<string> va = ta.Vocabulary(), vb = tb.Vocabulary();
        if (va.SequenceEqual(vb, StringComparer.Ordinal)) return;
        int first = Enumerable.Range(0, Math.Min(va.Count, vb.Count)).FirstOrDefault(i => va[i] != vb[i], Math.Min(va.Count, vb.Count));
        string where = first < Math.Min(va.Count, vb.Count)
            ? $"token {first} is '{vb[first]}' there and '{va[first]}' in {a}"
            : $"{vb.Count} tokens there, {va.Count} in {a}";
        throw new InvalidRequestException(optionB, $"{b}: its tokenizer's vocabulary differs from {a}'s ({where}; expected the same tokens, or --tokenizer DIR to encode with one)");
    }

    private static long[] ReadIds(string tokensFile, int vocab)
    {
        var ids = new List<long>();
        int line = 0;
        foreach (string row in File.ReadLines(tokensFile))
        {
            line++;
            foreach (string part in row.Split([' ', '\t', ','], StringSplitOptions.RemoveEmptyEntries))
            {
                if (!long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out long id) || id < 0 || id >= vocab)
                    throw new InvalidRequestException("--tokens", $"{tokensFile}:{line}: '{part}' is not a token id in 0..{vocab - 1}");
                ids.Add(id);
            }
        }
        return ids.ToArray();
    }
}
