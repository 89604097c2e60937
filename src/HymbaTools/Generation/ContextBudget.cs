using HymbaTools.Common;
using HymbaTools.Model;

namespace HymbaTools.Generation;

/// <summary>
/// How many tokens a generation may add within the model's context (max_position_embeddings: what an ONNX export's
/// RoPE tables cover and onnxruntime-genai's context_length; the same limit for a checkpoint and a GGUF file), decided
/// before the first token: prompt + new tokens at most the context, as genai's max_length counts them. A request past
/// the limit generates up to it and says so in one warning (exit 0); a prompt that leaves no room is refused.
/// </summary>
public sealed record ContextBudget(int MaxNewTokens, int Context, string? Warning)
{
    /// <summary>True when <see cref="MaxNewTokens"/> was cut to fit the context.</summary>
    public bool Limited => Warning is not null;

    public static ContextBudget Fit(int promptTokens, int maxNewTokens, HymbaConfig config)
    {
        int context = config.MaxPositionEmbeddings;
        if (promptTokens >= context)
            throw new InvalidRequestException("--prompt", $"{promptTokens} tokens leave no room in the model's context of {context} tokens (max_position_embeddings; expected fewer than {context})");
        int room = context - promptTokens;
        if (maxNewTokens <= room) return new ContextBudget(maxNewTokens, context, null);
        return new ContextBudget(room, context,
            $"warning: --max-new-tokens {maxNewTokens}: the prompt's {promptTokens} tokens and {maxNewTokens} new ones exceed the model's context of {context} tokens; generating at most {room}");
    }
}
