using System.Text.Json;

namespace GpuFleet.Worker.Chat;

/// <summary>One chat message; <see cref="Role"/> is system, user, assistant or tool.</summary>
internal sealed record ChatMessage(string Role, string? Content)
{
    /// <summary>Calls an assistant message made (OpenAI <c>tool_calls</c>).</summary>
    public IReadOnlyList<ChatToolCall>? ToolCalls { get; init; }

    /// <summary>An assistant message's reasoning; null when absent (then a &lt;think&gt; block in the content counts).</summary>
    public string? ReasoningContent { get; init; }

    /// <summary>The call a tool message answers; the Qwen format does not render it.</summary>
    public string? ToolCallId { get; init; }

    /// <summary>The tool's name on a tool message; the Qwen format does not render it.</summary>
    public string? Name { get; init; }
}

/// <summary>A function call an assistant made; <see cref="ArgumentsJson"/> is OpenAI's "arguments" string, a JSON object.</summary>
internal sealed record ChatToolCall(string Id, string Name, string ArgumentsJson);

/// <summary>An OpenAI function tool; <see cref="Parameters"/> is its JSON schema.</summary>
internal sealed record ChatTool(string Name, string? Description, JsonElement? Parameters);

/// <summary>How a conversation is rendered into a prompt.</summary>
internal sealed record ChatRenderOptions
{
    /// <summary>Tools announced in the system turn; null or empty announces none.</summary>
    public IReadOnlyList<ChatTool>? Tools { get; init; }

    /// <summary>End with the opening of an assistant turn, for generation.</summary>
    public bool AddGenerationPrompt { get; init; } = true;

    /// <summary>false closes the generation prompt's think block empty; null or true leaves it open (the template's default is thinking on).</summary>
    public bool? EnableThinking { get; init; }
}

/// <summary>One part of an OpenAI content array: <see cref="Type"/> "text" with <see cref="Text"/>, or a media type.</summary>
internal sealed record ChatContentPart(string Type, string? Text);

/// <summary>
/// A conversation the chat format cannot render. The message says what is wrong in terms an API client can
/// act on and never quotes prompt text.
/// </summary>
internal sealed class ChatFormatException : ArgumentException
{
    public ChatFormatException()
    {
    }

    public ChatFormatException(string message)
        : base(message)
    {
    }

    public ChatFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
