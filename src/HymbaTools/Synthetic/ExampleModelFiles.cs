using System.Text.Json.Nodes;
using HymbaTools.Common;

namespace HymbaTools.Synthetic;

/// <summary>The tokenizer and generation files a trained example checkpoint ships, in HuggingFace layout.</summary>
internal static class ExampleModelFiles
{
    public const string PadToken = "[PAD]";

    /// <summary>Copies tokenizer.model and writes tokenizer_config.json, special_tokens_map.json, added_tokens.json ([PAD] = piece count) and generation_config.json.</summary>
    public static void WriteTokenizerFiles(string directory, string tokenizerModel, int pieceCount)
    {
        Directory.CreateDirectory(directory);
        string target = Path.Combine(directory, "tokenizer.model");
        if (Path.GetFullPath(tokenizerModel) != Path.GetFullPath(target)) File.Copy(tokenizerModel, target, overwrite: true);
        AtomicFile.WriteAllText(Path.Combine(directory, "added_tokens.json"), PythonStyleJson.Serialize(new JsonObject { [PadToken] = pieceCount }));
        AtomicFile.WriteAllText(Path.Combine(directory, "special_tokens_map.json"), PythonStyleJson.Serialize(new JsonObject
        {
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
            ["unk_token"] = "<unk>",
            ["pad_token"] = PadToken,
        }));
        AtomicFile.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), PythonStyleJson.Serialize(new JsonObject
        {
            ["add_bos_token"] = true,
            ["add_eos_token"] = false,
            ["bos_token"] = "<s>",
            ["eos_token"] = "</s>",
            ["unk_token"] = "<unk>",
            ["pad_token"] = PadToken,
            ["legacy"] = true,
            ["model_max_length"] = 1024,
            ["tokenizer_class"] = "LlamaTokenizer",
            ["clean_up_tokenization_spaces"] = false,
            ["chat_template"] = ChatTemplate,
        }));
        AtomicFile.WriteAllText(Path.Combine(directory, "generation_config.json"), PythonStyleJson.Serialize(new JsonObject
        {
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["pad_token_id"] = 0,
            ["transformers_version"] = "4.44.0",
            ["use_cache"] = false,
        }));
    }

    /// <summary>The Hymba-Instruct chat template (docs/architecture.md §5) in Jinja, for tokenizer_config.json.</summary>
    public const string ChatTemplate =
        "{{'<extra_id_0>System'}}{% for message in messages %}{% if message['role'] == 'system' %}{{'\n' + message['content'].strip()}}{% endif %}{% endfor %}{{'\n\n'}}" +
        "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<extra_id_1>User\n' + message['content'].strip() + '\n' }}" +
        "{% elif message['role'] == 'assistant' %}{{ '<extra_id_1>Assistant\n' + message['content'].strip() + '\n' }}" +
        "{% elif message['role'] == 'tool' %}{{ '<extra_id_1>Tool\n' + message['content'].strip() + '\n' }}{% endif %}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<extra_id_1>Assistant\n' }}{% endif %}";
}
