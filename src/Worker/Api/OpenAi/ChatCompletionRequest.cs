using System.Text.Json;
using GpuFleet.Contracts;
using GpuFleet.Worker.Chat;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>How the request lets the model use its tools.</summary>
internal enum ToolChoiceMode
{
    /// <summary>The model decides (tools announced, calls parsed).</summary>
    Auto,
    /// <summary>No tool calls: tools are not announced.</summary>
    None,
    /// <summary>The reply must be a tool call (enforced with a grammar).</summary>
    Required,
    /// <summary>The reply must call this one function (enforced with a grammar).</summary>
    Named,
}

/// <summary>A parsed and validated <c>POST /v1/chat/completions</c> body.</summary>
internal sealed record ChatCompletionRequest(
    GenerationParameters Parameters,
    IReadOnlyList<ChatMessage> Messages,
    IReadOnlyList<ChatTool> Tools,
    ToolChoiceMode ToolChoice,
    string? ToolChoiceName,
    bool JsonObject,
    bool? EnableThinking)
{
    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant", "tool"];

    public static ChatCompletionRequest Parse(JsonElement root)
    {
        var body = new JsonFields(root, string.Empty);
        var parameters = GenerationParameters.Parse(body, defaultMaxTokens: 0);
        var messages = ParseMessages(body);
        var tools = ParseTools(body);
        var (choice, name) = ParseToolChoice(body, tools);
        var jsonObject = ParseResponseFormat(body);
        var kwargs = body.Object("chat_template_kwargs");
        var enableThinking = kwargs?.Bool("enable_thinking") ?? body.Bool("enable_thinking");
        return new ChatCompletionRequest(parameters, messages, tools, choice, name, jsonObject, enableThinking);
    }

    private static List<ChatMessage> ParseMessages(JsonFields body)
    {
        var array = body.Array("messages")
            ?? throw OpenAiException.BadRequest("'messages' is required.", "messages", "missing_required_parameter");
        var messages = new List<ChatMessage>();
        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            var path = $"messages[{index++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw OpenAiException.BadRequest($"'{path}' must be an object.", path, "invalid_type");
            }

            var fields = new JsonFields(item, path);
            var role = fields.RequiredString("role");
            if (!Roles.Contains(role))
            {
                throw OpenAiException.BadRequest($"'{path}.role' must be one of system, developer, user, assistant, tool; not '{JsonRequestBody.Quote(role)}'.", $"{path}.role", "invalid_value");
            }

            var toolCalls = role == "assistant" ? ParseToolCalls(fields) : null;
            var content = ParseContent(fields);
            if (content is null && toolCalls is null or { Count: 0 })
            {
                throw OpenAiException.BadRequest($"'{path}.content' is required.", $"{path}.content", "missing_required_parameter");
            }

            var toolCallId = fields.String("tool_call_id");
            if (role == "tool" && toolCallId is null)
            {
                throw OpenAiException.BadRequest($"'{path}.tool_call_id' is required for tool messages.", $"{path}.tool_call_id", "missing_required_parameter");
            }

            // "developer" is the newer name of "system" in the OpenAI API.
            messages.Add(new ChatMessage(role == "developer" ? "system" : role, content)
            {
                ToolCalls = toolCalls,
                ToolCallId = toolCallId,
                Name = fields.String("name"),
                ReasoningContent = fields.String("reasoning_content"),
            });
        }

        return messages.Count > 0
            ? messages
            : throw OpenAiException.BadRequest("'messages' must contain at least one message.", "messages", "invalid_value");
    }

    /// <summary>A string, or an array of text parts (other part types are not supported by a text model).</summary>
    private static string? ParseContent(JsonFields message)
    {
        if (message.Raw("content") is not { } content)
        {
            return null;
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString();
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw message.Wrong("content", "a string or an array of content parts");
        }

        var text = new System.Text.StringBuilder();
        var i = 0;
        foreach (var part in content.EnumerateArray())
        {
            var partPath = $"{message.Name("content")}[{i++}]";
            if (part.ValueKind != JsonValueKind.Object)
            {
                throw OpenAiException.BadRequest($"'{partPath}' must be an object.", partPath, "invalid_type");
            }

            var fields = new JsonFields(part, partPath);
            var type = fields.RequiredString("type");
            if (type != "text")
            {
                throw OpenAiException.BadRequest($"'{partPath}.type' '{JsonRequestBody.Quote(type)}' is not supported: this model reads text only.", $"{partPath}.type", "unsupported_value");
            }

            text.Append(fields.RequiredString("text"));
        }

        return text.ToString();
    }

    private static List<ChatToolCall>? ParseToolCalls(JsonFields message)
    {
        if (message.Array("tool_calls") is not { } array)
        {
            return null;
        }

        var calls = new List<ChatToolCall>();
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            var path = $"{message.Name("tool_calls")}[{i++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw OpenAiException.BadRequest($"'{path}' must be an object.", path, "invalid_type");
            }

            var call = new JsonFields(item, path);
            var function = call.Object("function")
                ?? throw OpenAiException.BadRequest($"'{path}.function' is required.", $"{path}.function", "missing_required_parameter");
            var arguments = function.String("arguments") ?? "{}";
            // JSON inside a JSON string, whose strings the chat format reads: checked as strictly as a body.
            if (JsonRequestBody.Problem(System.Text.Encoding.UTF8.GetBytes(arguments)) is not null || !IsJsonObject(arguments))
            {
                throw OpenAiException.BadRequest($"'{path}.function.arguments' must be a JSON object encoded as a string.", $"{path}.function.arguments", "invalid_value");
            }

            calls.Add(new ChatToolCall(call.String("id") ?? $"call_{i}", function.RequiredString("name"), arguments));
        }

        return calls;
    }

    private static bool IsJsonObject(string json)
    {
        using var parsed = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = JsonRequestBody.MaxDepth });
        return parsed.RootElement.ValueKind == JsonValueKind.Object;
    }

    private static List<ChatTool> ParseTools(JsonFields body)
    {
        var tools = new List<ChatTool>();
        if (body.Array("tools") is not { } array)
        {
            return tools;
        }

        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            var path = $"tools[{i++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw OpenAiException.BadRequest($"'{path}' must be an object.", path, "invalid_type");
            }

            var tool = new JsonFields(item, path);
            var type = tool.String("type") ?? "function";
            if (type != "function")
            {
                throw OpenAiException.BadRequest($"'{path}.type' must be 'function', not '{JsonRequestBody.Quote(type)}'.", $"{path}.type", "unsupported_value");
            }

            var function = tool.Object("function")
                ?? throw OpenAiException.BadRequest($"'{path}.function' is required.", $"{path}.function", "missing_required_parameter");
            var parameters = function.Raw("parameters");
            if (parameters is { ValueKind: not JsonValueKind.Object })
            {
                throw function.Wrong("parameters", "a JSON schema object");
            }

            tools.Add(new ChatTool(function.RequiredString("name"), function.String("description"), parameters?.Clone()));
        }

        return tools;
    }

    private static (ToolChoiceMode Mode, string? Name) ParseToolChoice(JsonFields body, List<ChatTool> tools)
    {
        if (body.Raw("tool_choice") is not { } choice)
        {
            return (ToolChoiceMode.Auto, null);
        }

        if (choice.ValueKind == JsonValueKind.String)
        {
            var mode = choice.GetString() switch
            {
                "auto" => ToolChoiceMode.Auto,
                "none" => ToolChoiceMode.None,
                "required" => ToolChoiceMode.Required,
                var other => throw OpenAiException.BadRequest($"'tool_choice' must be none, auto, required or a function, not '{JsonRequestBody.Quote(other ?? "")}'.", "tool_choice", "invalid_value"),
            };
            if (mode == ToolChoiceMode.Required && tools.Count == 0)
            {
                throw OpenAiException.BadRequest("'tool_choice' is 'required' but no tools were given.", "tool_choice", "invalid_value");
            }

            return (mode, null);
        }

        if (choice.ValueKind != JsonValueKind.Object)
        {
            throw body.Wrong("tool_choice", "a string or an object");
        }

        var name = new JsonFields(choice, "tool_choice").Object("function")?.String("name")
            ?? throw OpenAiException.BadRequest("'tool_choice.function.name' is required.", "tool_choice.function.name", "missing_required_parameter");
        return tools.Any(t => t.Name == name)
            ? (ToolChoiceMode.Named, name)
            : throw OpenAiException.BadRequest($"'tool_choice' names '{JsonRequestBody.Quote(name)}', which is not among 'tools'.", "tool_choice", "invalid_value");
    }

    private static bool ParseResponseFormat(JsonFields body)
    {
        if (body.Object("response_format") is not { } format)
        {
            return false;
        }

        return format.RequiredString("type") switch
        {
            "text" => false,
            "json_object" => true,
            "json_schema" => throw OpenAiException.BadRequest(
                "response_format 'json_schema' is not supported yet; use 'json_object' (any JSON object is guaranteed).", "response_format.type", "unsupported_value"),
            var other => throw OpenAiException.BadRequest($"'response_format.type' must be text or json_object, not '{JsonRequestBody.Quote(other)}'.", "response_format.type", "invalid_value"),
        };
    }
}
