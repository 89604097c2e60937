using System.Text;

namespace HymbaTools.Text;

public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// The Hymba-Instruct chat format (docs/architecture.md §5): "&lt;extra_id_0&gt;System", the system text on
/// its own line when given, a blank line, then "&lt;extra_id_1&gt;User\n...\n" / "&lt;extra_id_1&gt;Assistant\n...\n"
/// turns, and "&lt;extra_id_1&gt;Assistant\n" as the generation prompt. The markers are added tokens of Hymba-Instruct's tokenizer.
/// </summary>
public static class ChatTemplate
{
    private static readonly Dictionary<string, string> TurnNames = new(StringComparer.Ordinal)
    {
        ["user"] = "User",
        ["assistant"] = "Assistant",
        ["tool"] = "Tool",
    };

    /// <summary>The template's special tokens: one token each in Hymba-Instruct's tokenizer, plain text to a tokenizer without them.</summary>
    public static readonly IReadOnlyList<string> Markers = ["<extra_id_0>", "<extra_id_1>"];

    public static string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        var list = messages.ToList();
        var sb = new StringBuilder("<extra_id_0>System");
        foreach (var m in list.Where(m => m.Role == "system")) sb.Append('\n').Append(m.Content.Trim());
        sb.Append("\n\n");
        foreach (var m in list.Where(m => m.Role != "system"))
        {
            if (!TurnNames.TryGetValue(m.Role, out var name)) throw new ArgumentException($"unknown chat role '{m.Role}'");
            sb.Append("<extra_id_1>").Append(name).Append('\n').Append(m.Content.Trim()).Append('\n');
        }
        if (addGenerationPrompt) sb.Append("<extra_id_1>Assistant\n");
        return sb.ToString();
    }
}
