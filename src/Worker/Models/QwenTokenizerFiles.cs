using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Models;

/// <summary>
/// The real Qwen3.5/3.6 tokenizer for demo models: the vocabulary and merges of llama.cpp's
/// <c>models/ggml-vocab-qwen35.gguf</c> (pre-tokenizer <c>qwen35</c>, 151,936 tokens) and the family's chat template
/// (<c>models/templates/Qwen3.5-4B.jinja</c>), both from the pinned llama.cpp release's source
/// (scripts/fetch-tokenizer.sh). A prompt then costs the tokens it costs on the real model.
/// </summary>
public sealed record QwenTokenizerFiles(string VocabularyPath, string ChatTemplatePath)
{
    public const string VocabularyFileName = "ggml-vocab-qwen35.gguf";
    public const string ChatTemplateFileName = "Qwen3.5-4B.jinja";

    private const int Control = 3; // llama_token_type LLAMA_TOKEN_TYPE_CONTROL
    private const int UserDefined = 4; // LLAMA_TOKEN_TYPE_USER_DEFINED

    /// <summary>
    /// The family's added tokens that the test vocabulary keeps only as <c>[PAD…]</c> placeholders, at the ids the
    /// Qwen2.5/Qwen3 tokenizers give them: tool calls, tool results and thinking must each be one token, as on the
    /// real model. Control tokens render only when asked; user-defined ones always render as text.
    /// </summary>
    private static readonly (int Id, string Text, int Type)[] AddedTokens =
    [
        (151646, "<|object_ref_start|>", Control), (151647, "<|object_ref_end|>", Control),
        (151648, "<|box_start|>", Control), (151649, "<|box_end|>", Control),
        (151650, "<|quad_start|>", Control), (151651, "<|quad_end|>", Control),
        (151652, "<|vision_start|>", Control), (151653, "<|vision_end|>", Control),
        (151654, "<|vision_pad|>", Control), (151655, "<|image_pad|>", Control), (151656, "<|video_pad|>", Control),
        (151657, "<tool_call>", UserDefined), (151658, "</tool_call>", UserDefined),
        (151659, "<|fim_prefix|>", UserDefined), (151660, "<|fim_middle|>", UserDefined),
        (151661, "<|fim_suffix|>", UserDefined), (151662, "<|fim_pad|>", UserDefined),
        (151663, "<|repo_name|>", UserDefined), (151664, "<|file_sep|>", UserDefined),
        (151665, "<tool_response>", UserDefined), (151666, "</tool_response>", UserDefined),
        (151667, "<think>", UserDefined), (151668, "</think>", UserDefined),
    ];

    /// <summary>The two files in <paramref name="directory"/> (as scripts/fetch-tokenizer.sh lays them out).</summary>
    public static QwenTokenizerFiles InDirectory(string directory) =>
        new(Path.Combine(directory, VocabularyFileName), Path.Combine(directory, ChatTemplateFileName));

    /// <summary>Writes the tokenizer keys and the chat template; returns the vocabulary size.</summary>
    internal int Write(GgufWriter gguf)
    {
        using var vocabulary = new GgufReader(VocabularyPath);
        var pre = vocabulary.GetString("tokenizer.ggml.pre");
        if (vocabulary.GetString("tokenizer.ggml.model") != "gpt2" || pre != "qwen35")
        {
            throw new InvalidDataException($"'{VocabularyPath}' is not the Qwen3.5 vocabulary (pre-tokenizer '{pre}').");
        }

        var tokens = vocabulary.GetStringArray("tokenizer.ggml.tokens");
        var types = vocabulary.GetInt32Array("tokenizer.ggml.token_type");
        foreach (var (id, text, type) in AddedTokens)
        {
            // Only placeholders are replaced: a vocabulary that already names these ids keeps its own tokens.
            if (id < tokens.Length && tokens[id].StartsWith("[PAD", StringComparison.Ordinal))
            {
                tokens[id] = text;
                types[id] = type;
            }
        }

        var endOfText = vocabulary.GetUInt32("tokenizer.ggml.eos_token_id");
        var imEnd = Array.IndexOf(tokens, "<|im_end|>");
        if (imEnd < 0)
        {
            throw new InvalidDataException($"'{VocabularyPath}' has no <|im_end|> token.");
        }

        gguf.SetString("tokenizer.ggml.model", "gpt2");
        gguf.SetString("tokenizer.ggml.pre", pre);
        gguf.SetStringArray("tokenizer.ggml.tokens", tokens);
        gguf.SetInt32Array("tokenizer.ggml.token_type", types);
        gguf.SetStringArray("tokenizer.ggml.merges", vocabulary.GetStringArray("tokenizer.ggml.merges"));
        // As the released chat models: a turn ends with <|im_end|>; <|endoftext|> pads and starts documents.
        gguf.SetUInt32("tokenizer.ggml.eos_token_id", (uint)imEnd);
        gguf.SetUInt32("tokenizer.ggml.bos_token_id", endOfText);
        gguf.SetUInt32("tokenizer.ggml.padding_token_id", endOfText);
        gguf.SetBool("tokenizer.ggml.add_bos_token", false);
        gguf.SetString("tokenizer.chat_template", ChatTemplate());
        return tokens.Length;
    }

    internal string ChatTemplate() => File.ReadAllText(ChatTemplatePath);
}
