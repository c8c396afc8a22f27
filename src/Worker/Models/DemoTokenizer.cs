using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Models;

/// <summary>
/// A small byte-level BPE tokenizer in the Qwen2 style (GPT-2 byte alphabet, a few merges) carrying the
/// Qwen special tokens, written as GGUF <c>tokenizer.*</c> metadata. Any UTF-8 text round-trips.
/// </summary>
internal static class DemoTokenizer
{
    /// <summary>Control tokens (never rendered as text unless asked) and user-defined tokens (always rendered).</summary>
    public static readonly string[] ControlTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    public static readonly string[] UserDefinedTokens =
        ["<tool_call>", "</tool_call>", "<think>", "</think>", "<tool_response>", "</tool_response>"];

    // A few common English merges so that tokenization is not purely one token per byte (GPT-2 'Ġ' = space).
    private static readonly string[] Merges =
        ["\u0120 t", "h e", "\u0120t he", "i n", "e r", "\u0120 a", "o n", "r e", "a t", "e n", "\u0120 s", "o r"];

    /// <summary>ChatML, as Qwen models render plain conversations (the full Qwen tool/think format is rendered by the API layer).</summary>
    public const string ChatTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// <summary>Writes the tokenizer keys; returns the vocabulary size.</summary>
    public static int Write(GgufWriter gguf)
    {
        var byteToChar = GptByteToUnicode();
        var tokens = new List<string>(Enumerable.Range(0, 256).Select(b => byteToChar[b].ToString()));
        tokens.AddRange(Merges.Select(m => m.Replace(" ", string.Empty, StringComparison.Ordinal)));
        var types = Enumerable.Repeat(1, tokens.Count).ToList(); // 1 = NORMAL
        var firstSpecial = tokens.Count;
        tokens.AddRange(ControlTokens);
        types.AddRange(Enumerable.Repeat(3, ControlTokens.Length)); // 3 = CONTROL
        tokens.AddRange(UserDefinedTokens);
        types.AddRange(Enumerable.Repeat(4, UserDefinedTokens.Length)); // 4 = USER_DEFINED

        gguf.SetString("tokenizer.ggml.model", "gpt2");
        gguf.SetString("tokenizer.ggml.pre", "qwen2");
        gguf.SetStringArray("tokenizer.ggml.tokens", tokens);
        gguf.SetInt32Array("tokenizer.ggml.token_type", [.. types]);
        gguf.SetStringArray("tokenizer.ggml.merges", Merges);
        var endOfText = (uint)firstSpecial;
        var imEnd = (uint)(firstSpecial + 2);
        gguf.SetUInt32("tokenizer.ggml.bos_token_id", endOfText);
        gguf.SetUInt32("tokenizer.ggml.eos_token_id", imEnd);
        gguf.SetUInt32("tokenizer.ggml.padding_token_id", endOfText);
        gguf.SetBool("tokenizer.ggml.add_bos_token", false);
        gguf.SetString("tokenizer.chat_template", ChatTemplate);
        return tokens.Count;
    }

    /// <summary>GPT-2's reversible byte-to-printable-character map.</summary>
    private static char[] GptByteToUnicode()
    {
        var map = new char[256];
        var assigned = new bool[256];
        foreach (var (from, to) in new[] { ('!', '~'), ('\u00a1', '\u00ac'), ('\u00ae', '\u00ff') })
        {
            for (var c = from; c <= to; c++)
            {
                map[c] = c;
                assigned[c] = true;
            }
        }

        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            if (!assigned[b])
            {
                map[b] = (char)next++;
            }
        }

        return map;
    }
}
