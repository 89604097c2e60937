using System.Diagnostics;
using HymbaTools.Model;
using HymbaTools.Runtime;
using HymbaTools.Text;

namespace HymbaTools.Generation;

public sealed record GenerationResult(IReadOnlyList<long> PromptIds, IReadOnlyList<long> GeneratedIds, string Text, bool StoppedAtEos, double TokensPerSecond, TimeSpan PrefillTime);

/// <summary>
/// Autoregressive generation over any runner's incremental-decoding cache: one prefill of the prompt, then one
/// decode step per new token, text streamed through a callback as soon as it decodes.
/// </summary>
public static class TextGenerator
{
    public static GenerationResult Generate(IHymbaRunner runner, HymbaTokenizer tokenizer, long[] promptIds, int maxNewTokens, SamplingOptions sampling,
        Action<string>? onText = null)
    {
        if (promptIds.Length == 0) throw new Common.InvalidRequestException("--prompt", "the prompt encodes to no tokens");
        var sampler = new TokenSampler(sampling);
        using var session = runner.StartDecode(1, DecodeWindowMode.MatchFullForward);
        var clock = Stopwatch.StartNew();
        var logits = session.Step([promptIds]);
        var prefill = clock.Elapsed;
        var generated = new List<long>();
        // SentencePiece drops the word-boundary space of the first piece it decodes ("▁to" alone is "to"), so the new
        // tokens are decoded after the last prompt token and that token's own text is cut off again.
        long anchor = promptIds[^1];
        string anchorText = tokenizer.Decode([anchor]);
        string Text() => Suffix(tokenizer.Decode([anchor, .. generated]), anchorText);
        string emitted = "";
        bool eos = false;
        var decodeClock = Stopwatch.StartNew();
        for (int i = 0; i < maxNewTokens; i++)
        {
            Common.Interruption.ThrowIfRequested();
            int next = sampler.Next(logits.Row(0, logits.Tokens - 1));
            if (next == tokenizer.EosId) { eos = true; break; }
            generated.Add(next);
            string text = Text();
            // Stream only complete characters: hold back while the tail is an unfinished byte sequence.
            if (text.Length > emitted.Length && !text.EndsWith('\uFFFD'))
            {
                onText?.Invoke(text[emitted.Length..]);
                emitted = text;
            }
            if (i + 1 < maxNewTokens) logits = session.Step([[next]]);
        }
        string final = Text();
        if (final.Length > emitted.Length) onText?.Invoke(final[emitted.Length..]);
        double seconds = decodeClock.Elapsed.TotalSeconds;
        return new GenerationResult(promptIds, generated, final, eos, generated.Count / Math.Max(seconds, 1e-9), prefill);
    }

    private static string Suffix(string text, string prefix) => text.StartsWith(prefix, StringComparison.Ordinal) ? text[prefix.Length..] : text;
}
