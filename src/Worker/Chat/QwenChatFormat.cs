using System.Text;
using System.Text.Json;
using GpuFleet.Contracts;

namespace GpuFleet.Worker.Chat;

/// <summary>
/// The chat format of Qwen3.5 / Qwen3.6 (llama.cpp architecture qwen35): renders a conversation exactly as the
/// model's Jinja template does under Hugging Face transformers, for text-only content.
/// </summary>
/// <remarks>
/// The template (llama.cpp models/templates/Qwen3.5-4B.jinja) is the specification; each step below names
/// the part it mirrors. Python semantics matter: tojson is json.dumps with ", " / ": " separators, non-ASCII
/// kept and keys in input order; scalar tool-call arguments go through str(), so booleans render as True and
/// False, null as None and floats as Python's repr; |trim strips Python's Unicode whitespace.
/// </remarks>
internal static class QwenChatFormat
{
    private const string ToolsOpening = "<|im_start|>system\n# Tools\n\nYou have access to the following functions:\n\n<tools>";

    private const string ToolInstructions =
        "\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n"
        + "<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
        + "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n"
        + "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
        + "- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n"
        + "- Required parameters MUST be specified\n"
        + "- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n"
        + "- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n"
        + "</IMPORTANT>";

    private const string ToolsClosing = "\n</tools>" + ToolInstructions;

    /// <summary>
    /// Where the tool declarations and their instructions end in a rendered prompt (a character offset; 0 without tools).
    /// They open the system turn, ahead of the system prompt: conversations declaring the same tools share everything
    /// before this point whatever their system prompt says (an agent's per-repository or per-user instructions).
    /// </summary>
    public static int ToolsEnd(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (!prompt.StartsWith(ToolsOpening, StringComparison.Ordinal))
        {
            return 0;
        }

        // Tools are JSON on one line each, so the closing tag and instructions (with their newlines) cannot occur inside them.
        var close = prompt.IndexOf(ToolsClosing, ToolsOpening.Length, StringComparison.Ordinal);
        return close < 0 ? 0 : close + ToolsClosing.Length;
    }

    /// <summary>Renders the prompt; throws <see cref="ChatFormatException"/> where the template raises an error.</summary>
    public static string Render(IReadOnlyList<ChatMessage> messages, ChatRenderOptions options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(options);
        if (messages.Count == 0)
        {
            throw new ChatFormatException("No messages provided.");
        }

        var sb = new StringBuilder();
        var firstIsSystem = messages[0].Role == "system";
        if (options.Tools is { Count: > 0 } tools)
        {
            // Tools open the system turn; a system message's text follows the instructions when not blank.
            sb.Append(ToolsOpening);
            foreach (var tool in tools)
            {
                sb.Append('\n');
                AppendToolJson(sb, tool);
            }

            sb.Append(ToolsClosing);
            var system = firstIsSystem ? PythonText.Strip(messages[0].Content ?? "") : "";
            if (system.Length > 0)
            {
                sb.Append("\n\n").Append(system);
            }

            sb.Append("<|im_end|>\n");
        }
        else if (firstIsSystem)
        {
            // Without tools the system turn is rendered even when blank.
            sb.Append("<|im_start|>system\n").Append(PythonText.Strip(messages[0].Content ?? "")).Append("<|im_end|>\n");
        }

        var lastQuery = LastQueryIndex(messages);
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            var content = PythonText.Strip(message.Content ?? "");
            switch (message.Role)
            {
                case "system":
                    if (i != 0)
                    {
                        throw new ChatFormatException("System message must be at the beginning.");
                    }

                    break;
                case "user":
                    sb.Append("<|im_start|>user\n").Append(content).Append("<|im_end|>\n");
                    break;
                case "assistant":
                    AppendAssistant(sb, message, content, keepReasoning: i > lastQuery);
                    break;
                case "tool":
                    // Consecutive tool results share one user turn; a tool message opening the conversation
                    // gets no turn header at all (the template's loop.previtem is undefined there).
                    if (i > 0 && messages[i - 1].Role != "tool")
                    {
                        sb.Append("<|im_start|>user");
                    }

                    sb.Append("\n<tool_response>\n").Append(content).Append("\n</tool_response>");
                    if (i == messages.Count - 1 || messages[i + 1].Role != "tool")
                    {
                        sb.Append("<|im_end|>\n");
                    }

                    break;
                default:
                    throw new ChatFormatException("Unexpected message role.");
            }
        }

        if (options.AddGenerationPrompt)
        {
            // Thinking is on unless explicitly disabled: the prompt then leaves a <think> block open.
            sb.Append("<|im_start|>assistant\n").Append(options.EnableThinking == false ? "<think>\n\n</think>\n\n" : "<think>\n");
        }

        return sb.ToString();
    }

    /// <summary>Whether a prompt rendered with these options ends inside an open &lt;think&gt; block, so generation starts in reasoning.</summary>
    public static bool GenerationStartsInReasoning(ChatRenderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.AddGenerationPrompt && options.EnableThinking != false;
    }

    /// <summary>
    /// Joins an OpenAI content array the way the template does (text parts concatenated, no separator).
    /// Images, videos and any other media are refused: this model endpoint is text-only.
    /// </summary>
    public static string JoinContentParts(IEnumerable<ChatContentPart> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var sb = new StringBuilder();
        foreach (var part in parts)
        {
            if (part.Type == "text" && part.Text is not null)
            {
                sb.Append(part.Text);
            }
            else if (part.Type is "image" or "image_url" or "input_image" or "video" or "video_url")
            {
                throw new ChatFormatException($"Content of type '{part.Type}' is not supported: this model accepts text only.");
            }
            else
            {
                throw new ChatFormatException("Unexpected item type in content.");
            }
        }

        return sb.ToString();
    }

    // The last user message that is a real query, not a tool result wrapped in <tool_response>. Assistant
    // turns after it keep their reasoning (the current tool-calling loop); earlier ones lose it.
    private static int LastQueryIndex(IReadOnlyList<ChatMessage> messages)
    {
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i].Role != "user")
            {
                continue;
            }

            var content = PythonText.Strip(messages[i].Content ?? "");
            if (!(content.StartsWith("<tool_response>", StringComparison.Ordinal) && content.EndsWith("</tool_response>", StringComparison.Ordinal)))
            {
                return i;
            }
        }

        throw new ChatFormatException("No user query found in messages.");
    }

    private static void AppendAssistant(StringBuilder sb, ChatMessage message, string content, bool keepReasoning)
    {
        string reasoning;
        if (message.ReasoningContent is not null)
        {
            reasoning = message.ReasoningContent;
        }
        else if (content.Contains("</think>", StringComparison.Ordinal))
        {
            // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') and split('</think>')[-1].lstrip('\n').
            var beforeClose = content[..content.IndexOf("</think>", StringComparison.Ordinal)].TrimEnd('\n');
            var open = beforeClose.LastIndexOf("<think>", StringComparison.Ordinal);
            reasoning = (open >= 0 ? beforeClose[(open + "<think>".Length)..] : beforeClose).TrimStart('\n');
            content = content[(content.LastIndexOf("</think>", StringComparison.Ordinal) + "</think>".Length)..].TrimStart('\n');
        }
        else
        {
            reasoning = "";
        }

        sb.Append("<|im_start|>assistant\n");
        if (keepReasoning)
        {
            sb.Append("<think>\n").Append(PythonText.Strip(reasoning)).Append("\n</think>\n\n");
        }

        sb.Append(content);
        if (message.ToolCalls is { Count: > 0 } calls)
        {
            for (var i = 0; i < calls.Count; i++)
            {
                var call = calls[i];
                var opener = i > 0 ? "\n<tool_call>\n<function=" : PythonText.Strip(content).Length > 0 ? "\n\n<tool_call>\n<function=" : "<tool_call>\n<function=";
                sb.Append(opener).Append(call.Name).Append(">\n");
                foreach (var (name, value) in ParseArguments(call))
                {
                    sb.Append("<parameter=").Append(name).Append(">\n");
                    if (value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                    {
                        PythonText.AppendJson(sb, value);
                    }
                    else
                    {
                        sb.Append(PythonText.Str(value));
                    }

                    sb.Append("\n</parameter>\n");
                }

                sb.Append("</function>\n</tool_call>");
            }
        }

        sb.Append("<|im_end|>\n");
    }

    // The template iterates arguments|items, so they must be an object; OpenAI clients send them as a JSON
    // string, parsed here as json.loads would. An empty string (some clients send it for no arguments) is {}.
    private static List<KeyValuePair<string, JsonElement>> ParseArguments(ChatToolCall call)
    {
        if (string.IsNullOrWhiteSpace(call.ArgumentsJson))
        {
            return [];
        }

        // Checked first (invalid JSON, too deep, an escape that is no text such as a lone surrogate), so that reading
        // the arguments' strings below cannot throw.
        if (JsonRequestBody.Problem(Encoding.UTF8.GetBytes(call.ArgumentsJson)) is null)
        {
            using var document = JsonDocument.Parse(call.ArgumentsJson, new JsonDocumentOptions { MaxDepth = JsonRequestBody.MaxDepth });
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                // Clone: the elements outlive the document.
                return PythonText.DictionaryItems(document.RootElement.Clone());
            }
        }

        throw new ChatFormatException($"The arguments of tool call '{JsonRequestBody.Quote(call.Name)}' are not a JSON object.");
    }

    // An OpenAI function tool as the request carries it: {"type": "function", "function": {...}}.
    private static void AppendToolJson(StringBuilder sb, ChatTool tool)
    {
        sb.Append("{\"type\": \"function\", \"function\": {\"name\": ");
        PythonText.AppendJsonString(sb, tool.Name);
        if (tool.Description is not null)
        {
            sb.Append(", \"description\": ");
            PythonText.AppendJsonString(sb, tool.Description);
        }

        if (tool.Parameters is { ValueKind: not JsonValueKind.Undefined } parameters)
        {
            sb.Append(", \"parameters\": ");
            PythonText.AppendJson(sb, parameters);
        }

        sb.Append("}}");
    }
}
