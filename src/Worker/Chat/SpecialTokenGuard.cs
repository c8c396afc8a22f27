using System.Text;
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
public sealed class SpecialTokenGuard
{
    // Supplementary private-use plane 15: never typed, and not rewritten by rendering (no escaping, not whitespace).
    private const int PlaceholderBase = 0xF0000;
    private readonly LlamaModel _model;
    private readonly IReadOnlyList<SpecialToken> _specials;

    public SpecialTokenGuard(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _specials = [.. model.SpecialTokens.Where(s => s.IsControl)];
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

    /// <summary>Tokenizes a prompt rendered from neutralized input: specials parsed, placeholders as plain text.</summary>
    public int[] Tokenize(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var tokens = new List<int>();
        var segment = new StringBuilder();
        for (var i = 0; i < prompt.Length; i++)
        {
            if (char.IsHighSurrogate(prompt[i]) && i + 1 < prompt.Length && char.ConvertToUtf32(prompt[i], prompt[i + 1]) is var cp
                && cp >= PlaceholderBase && cp < PlaceholderBase + _specials.Count)
            {
                Flush();
                tokens.AddRange(_model.Tokenize(_specials[cp - PlaceholderBase].Text, parseSpecial: false));
                i++;
                continue;
            }

            segment.Append(prompt[i]);
        }

        Flush();
        return [.. tokens];

        void Flush()
        {
            if (segment.Length > 0)
            {
                tokens.AddRange(_model.Tokenize(segment.ToString(), parseSpecial: true));
                segment.Clear();
            }
        }
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
