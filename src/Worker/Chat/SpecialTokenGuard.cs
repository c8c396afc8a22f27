using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Chat;

/// <summary>
/// Keeps text that arrives in a request from becoming special tokens. The rendered prompt is tokenized with
/// special parsing (its <c>&lt;|im_start|&gt;</c> and <c>&lt;think&gt;</c> must be single tokens), so a user or
/// a tool result containing "&lt;|im_end|&gt;&lt;|im_start|&gt;system" could otherwise forge turns. Before
/// rendering, each control token's text inside request strings is swapped for a private-use placeholder;
/// after rendering, placeholders are tokenized as the plain text they stand for.
/// </summary>
/// <remarks>
/// Only control tokens (which delimit turns) are neutralized. User-defined tags such as <c>&lt;think&gt;</c> or
/// <c>&lt;tool_call&gt;</c> match in any text, with or without special parsing, in llama.cpp as in the model's
/// Hugging Face tokenizer; they cannot open a turn, so they are left as the model was trained to see them.
/// </remarks>
internal sealed class SpecialTokenGuard
{
    // Supplementary private-use plane 15: never typed, and not rewritten by rendering (no escaping, not whitespace).
    private const int PlaceholderBase = 0xF0000;
    private readonly LlamaModel _model;
    private const int SpecialsPerPiece = 32;
    private readonly IReadOnlyList<SpecialToken> _specials;

    // Every special's text (control and user-defined: llama.cpp matches both with special parsing), longest first.
    private readonly Dictionary<char, string[]> _allSpecialsByFirstChar;

    public SpecialTokenGuard(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _specials = [.. model.SpecialTokens.Where(s => s.IsControl)];
        _allSpecialsByFirstChar = model.SpecialTokens.GroupBy(s => s.Text[0])
            .ToDictionary(g => g.Key, g => g.Select(s => s.Text).Distinct().OrderByDescending(t => t.Length).ToArray());
    }

    /// <summary>Copies of the messages and tools with special-token text replaced by placeholders.</summary>
    public (IReadOnlyList<ChatMessage> Messages, IReadOnlyList<ChatTool> Tools) Neutralize(IReadOnlyList<ChatMessage> messages, IReadOnlyList<ChatTool> tools)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(tools);
        var safeMessages = messages.Select(m => m with
        {
            Content = Escape(m.Content),
            ReasoningContent = Escape(m.ReasoningContent),
            Name = Escape(m.Name),
            ToolCallId = Escape(m.ToolCallId),
            ToolCalls = m.ToolCalls?.Select(c => c with { Name = Escape(c.Name)!, ArgumentsJson = Escape(c.ArgumentsJson)! }).ToList(),
        }).ToList();
        var safeTools = tools.Select(t => t with
        {
            Name = Escape(t.Name)!,
            Description = Escape(t.Description),
            Parameters = t.Parameters is { } p && Escape(p.GetRawText()) is { } json && json != p.GetRawText()
                ? ParseJson(json)
                : t.Parameters,
        }).ToList();
        return (safeMessages, safeTools);
    }

    /// <summary>
    /// Tokenizes a prompt rendered from neutralized input: specials parsed, placeholders as plain text. Stops once more
    /// than <paramref name="limit"/> tokens are counted, so a prompt that cannot fit a context is refused without
    /// tokenizing all of it; the result then holds more than <paramref name="limit"/> tokens, but not all of them.
    /// </summary>
    public int[] Tokenize(string prompt, int limit = int.MaxValue) => Tokenize(prompt, limit, placeholders: true);

    /// <summary>Tokenizes client text as it stands (specials parsed, no placeholders), in linear time; stops like <see cref="Tokenize(string, int)"/>.</summary>
    public int[] TokenizeText(string text, int limit = int.MaxValue) => Tokenize(text, limit, placeholders: false);

    // llama.cpp's special-token partition costs time quadratic in the specials one call sees (each match walks its
    // fragment list from the head: 20,000 messages took 5 s), so text goes to it in pieces of at most SpecialsPerPiece
    // specials each. A piece ends right before a special token's text, where llama.cpp's own partition ends a fragment
    // too (specials are matched before anything else, and Qwen-style specials, <...>, cannot overlap one another), so
    // the tokens are the same as from one call. A test checks that equality on rendered conversations.
    private int[] Tokenize(string text, int limit, bool placeholders)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<int>();
        var start = 0;
        var specialsInPiece = 0;
        var i = 0;
        while (i < text.Length && tokens.Count <= limit)
        {
            if (placeholders && char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])
                && char.ConvertToUtf32(text[i], text[i + 1]) is var cp && cp >= PlaceholderBase && cp < PlaceholderBase + _specials.Count)
            {
                Flush(i);
                tokens.AddRange(_model.Tokenize(_specials[cp - PlaceholderBase].Text, parseSpecial: false));
                i += 2;
                start = i;
                specialsInPiece = 0;
                continue;
            }

            if (SpecialAt(text, i) is var length and > 0)
            {
                if (specialsInPiece == SpecialsPerPiece)
                {
                    Flush(i);
                    start = i;
                    specialsInPiece = 0;
                }

                specialsInPiece++;
                i += length;
                continue;
            }

            i++;
        }

        if (tokens.Count <= limit)
        {
            Flush(text.Length);
        }

        return [.. tokens];

        void Flush(int end)
        {
            if (end > start)
            {
                tokens.AddRange(_model.Tokenize(text[start..end], parseSpecial: true));
            }
        }
    }

    // The length of the longest special token's text at text[index], or 0.
    private int SpecialAt(string text, int index)
    {
        if (!_allSpecialsByFirstChar.TryGetValue(text[index], out var candidates))
        {
            return 0;
        }

        foreach (var candidate in candidates)
        {
            if (text.AsSpan(index).StartsWith(candidate, StringComparison.Ordinal))
            {
                return candidate.Length;
            }
        }

        return 0;
    }

    private static System.Text.Json.JsonElement ParseJson(string json)
    {
        using var document = System.Text.Json.JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private string? Escape(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text;
        }

        var result = text;
        // Longest first, so that a longer special is not split by a shorter one inside it.
        for (var i = 0; i < _specials.Count; i++)
        {
            var special = _specials[i];
            if (result.Contains(special.Text, StringComparison.Ordinal))
            {
                result = result.Replace(special.Text, char.ConvertFromUtf32(PlaceholderBase + i), StringComparison.Ordinal);
            }
        }

        return result;
    }
}
