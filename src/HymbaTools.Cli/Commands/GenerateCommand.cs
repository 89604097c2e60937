using System.CommandLine;
using System.Globalization;
using HymbaTools.Common;
using HymbaTools.Generation;
using HymbaTools.Text;

namespace HymbaTools.Cli.Commands;

internal static class GenerateCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var artifact = new Argument<string>("artifact") { Description = "HuggingFace checkpoint directory, .gguf file or ONNX export directory" + CheckpointInput.HubHelp };
        var prompt = new Option<string>("--prompt") { Description = "Prompt text", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate (stops earlier at EOS; at most what the model's context leaves after the prompt: a larger request generates up to the context with a warning)", DefaultValueFactory = _ => 64 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 = greedy", DefaultValueFactory = _ => 0.8 };
        var topK = new Option<int>("--top-k") { Description = "Sample among the K most likely tokens (0 = all)", DefaultValueFactory = _ => 40 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling mass", DefaultValueFactory = _ => 0.95 };
        var seed = new Option<int>("--seed") { Description = "Sampling seed", DefaultValueFactory = _ => 0 };
        var chat = new Option<bool>("--chat") { Description = "Wrap the prompt in the Hymba-Instruct chat template" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (prompt_ids, generated_ids, text; schemas/generate-report.schema.json) instead of streaming the text, so that a script can compare runtimes" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Directory with tokenizer.model (default: the checkpoint or export directory; for a .gguf file its tokenizer.ggml.* metadata, else its directory)" };
        var command = new Command("generate", "Generate text, streamed as it is produced, using the incremental decoding cache; prints tokens/s on stderr")
        {
            artifact, prompt, maxNew, temperature, topK, topP, seed, chat, tokenizer, json,
        };
        command.SetAction(parse => CommandRunner.Run(parse, stderr, () =>
        {
            string path = CheckpointInput.Resolve(parse.GetValue(artifact)!, stderr);
            int max = parse.GetValue(maxNew);
            if (max < 1) throw new InvalidRequestException("--max-new-tokens", $"{max}, expected >= 1");
            double t = parse.GetValue(temperature), p = parse.GetValue(topP);
            if (t < 0) throw new InvalidRequestException("--temperature", $"{t}, expected >= 0");
            if (p is <= 0 or > 1) throw new InvalidRequestException("--top-p", $"{p}, expected 0 < p <= 1");
            ArtifactKinds.Require(path, "generate", ArtifactKind.Runnable);
            var tok = ArtifactLoader.Tokenizer(path, parse.GetValue(tokenizer));
            string text = parse.GetValue(prompt)!;
            bool asChat = parse.GetValue(chat);
            long[] ids = asChat
                ? tok.Encode(ChatTemplate.Render([new ChatMessage("user", text)]), addBos: false)
                : tok.Encode(text);
            // A tokenizer without the template's special tokens spells each marker out in pieces: a prompt the model
            // was never trained on, so say so.
            if (asChat && ChatTemplate.Markers.Where(m => !tok.HasSpecialToken(m)).ToList() is { Count: > 0 } missing)
                stderr.WriteLine($"warning: --chat: the tokenizer has no {string.Join(", ", missing)} token(s); the chat markers are encoded as plain text ({ids.Length} prompt tokens)");
            using var runner = ArtifactLoader.Open(path, stderr);
            if (ids.Any(id => id >= runner.Config.VocabSize))
                throw new InvalidRequestException("--tokenizer", $"the tokenizer produces ids beyond the model's vocabulary of {runner.Config.VocabSize}");
            var budget = ContextBudget.Fit(ids.Length, max, runner.Config);
            if (budget.Warning is { } warning) stderr.WriteLine(warning);
            bool asJson = parse.GetValue(json);
            // A completion continues the prompt on the same line; a chat reply is a turn of its own, labelled as such.
            if (!asJson) stdout.Write(asChat ? $"User: {text}\nAssistant: " : text);
            var result = TextGenerator.Generate(runner, tok, ids, budget.MaxNewTokens,
                new SamplingOptions { Temperature = t, TopK = parse.GetValue(topK), TopP = p, Seed = parse.GetValue(seed) },
                asJson ? null : piece => { stdout.Write(piece); stdout.Flush(); });
            bool atContext = budget.Limited && !result.StoppedAtEos && result.GeneratedIds.Count == budget.MaxNewTokens;
            if (asJson) stdout.WriteLine(GenerationReport(runner.Description, result, atContext).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            else stdout.WriteLine();
            string stop = result.StoppedAtEos ? ", stopped at EOS" : atContext ? $", stopped at the context of {budget.Context} tokens" : "";
            stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{result.GeneratedIds.Count} tokens, {result.TokensPerSecond:F1} tokens/s (prefill of {ids.Length} tokens: {result.PrefillTime.TotalSeconds:F2} s){stop}"));
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The --json object (schemas/generate-report.schema.json).</summary>
    private static System.Text.Json.Nodes.JsonObject GenerationReport(string runtime, GenerationResult result, bool stoppedAtContext) => new()
    {
        ["runtime"] = runtime,
        ["prompt_ids"] = new System.Text.Json.Nodes.JsonArray([.. result.PromptIds.Select(id => (System.Text.Json.Nodes.JsonNode)id)]),
        ["generated_ids"] = new System.Text.Json.Nodes.JsonArray([.. result.GeneratedIds.Select(id => (System.Text.Json.Nodes.JsonNode)id)]),
        ["text"] = result.Text,
        ["stopped_at_eos"] = result.StoppedAtEos,
        ["stopped_at_context"] = stoppedAtContext,
        ["prefill_seconds"] = result.PrefillTime.TotalSeconds,
        ["decode_tokens_per_second"] = result.TokensPerSecond,
    };
}
