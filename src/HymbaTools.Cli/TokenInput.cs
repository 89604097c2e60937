using System.CommandLine;
using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Text;

namespace HymbaTools.Cli;

/// <summary>Token ids for commands that evaluate or calibrate: a text file (via the checkpoint's tokenizer), a file of ids, else the built-in evaluation text when there is a tokenizer, else random ids (and the report says which).</summary>
internal static class TokenInput
{
    /// <summary>The --random-tokens option every evaluating command offers (random ids only when asked).</summary>
    public static Option<int?> RandomTokensOption() => new("--random-tokens") { Description = "Evaluate on N random token ids (only when asked; the report says so)" };

    public static (long[] Ids, string Source) Read(string checkpointDirectory, string? textFile, string? tokensFile, int? randomTokens, int vocab, int seed = 7)
    {
        if (randomTokens is { } count)
        {
            if (textFile is not null || tokensFile is not null) throw new InvalidRequestException("--random-tokens", "give one of --text, --tokens and --random-tokens");
            if (count < 2) throw new InvalidRequestException("--random-tokens", $"{count}, expected at least 2");
            var random = new Random(seed);
            return (Enumerable.Range(0, count).Select(_ => (long)random.Next(vocab)).ToArray(), $"{count} random token ids (seed {seed}, --random-tokens)");
        }
        if (textFile is not null && tokensFile is not null) throw new InvalidRequestException("--text", "give either --text or --tokens, not both");
        if (tokensFile is not null)
        {
            if (!File.Exists(tokensFile)) throw new InvalidRequestException("--tokens", $"{tokensFile}: file not found");
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
            return (ids.ToArray(), Path.GetFileName(tokensFile));
        }
        if (textFile is not null)
        {
            if (!File.Exists(textFile)) throw new InvalidRequestException("--text", $"{textFile}: file not found");
            if (!HymbaTokenizer.Exists(checkpointDirectory))
                throw new InvalidRequestException("--text", $"{checkpointDirectory} has no tokenizer.model to encode text with (give --tokens FILE with token ids instead)");
            var tokenizer = HymbaTokenizer.Load(checkpointDirectory);
            return (tokenizer.Encode(File.ReadAllText(textFile)), Path.GetFileName(textFile));
        }
        if (!HymbaTokenizer.Exists(checkpointDirectory))
            throw new InvalidRequestException("--text", $"{checkpointDirectory} has no tokenizer.model to encode the built-in evaluation text: give --text FILE, --tokens FILE or --random-tokens N");
        var encoded = HymbaTokenizer.Load(checkpointDirectory).Encode(EvaluationText.Read());
        if (encoded.Any(id => id >= vocab)) throw new InvalidRequestException("--text", $"the tokenizer of {checkpointDirectory} produces ids beyond the vocabulary of {vocab}");
        return (encoded, EvaluationText.Description);
    }
}
