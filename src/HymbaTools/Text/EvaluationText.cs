namespace HymbaTools.Text;

/// <summary>
/// The text commands evaluate on when the user gives none and a tokenizer is at hand: 48 KB of public-domain English
/// prose embedded in the library (Text/Data/README.md says where it comes from), so a measured cost is a cost on
/// language, not on random token ids.
/// </summary>
public static class EvaluationText
{
    public const string Description = "the built-in evaluation text (48 KB of Austen's Persuasion)";

    public static string Read()
    {
        using var stream = typeof(EvaluationText).Assembly.GetManifestResourceStream("HymbaTools.Text.evaluation.txt")
            ?? throw new InvalidOperationException("the evaluation text is not embedded in the library");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
