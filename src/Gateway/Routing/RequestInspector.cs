using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;
using GpuFleet.Contracts;
using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Forwarding;

namespace GpuFleet.Gateway.Routing;

/// <summary>
/// Reads the fields of an OpenAI request body the gateway routes by, and renders its prompt canonically (tools, then
/// each message's role, content and tool calls, in order; JSON re-serialized compactly, so formatting does not
/// matter) for the prefix-block chain. Only structure is checked here; the worker validates the rest. Problems in
/// what the gateway reads are a 400 from the gateway, so such a request reaches no worker.
/// </summary>
internal sealed class RequestInspector(PrefixHasher hasher)
{
    // The rendering is unambiguous, so that no crafted text can render like another conversation: separators are
    // control bytes that text carries only escaped (EscapeByte before them), and a JSON-valued field starts with
    // JsonMarker (Utf8JsonWriter escapes every control character, so JSON never holds these bytes raw).
    private const byte FieldSeparator = 0x1f;
    private const byte MessageSeparator = 0x1e;
    private const byte EscapeByte = 0x1d;
    private const byte JsonMarker = 0x1c;
    private const string AssistantRole = "assistant";
    private static readonly SearchValues<byte> Reserved = SearchValues.Create([JsonMarker, EscapeByte, MessageSeparator, FieldSeparator]);

    public int BlockBytes => hasher.BlockBytes;

    public InspectedRequest Inspect(ReadOnlyMemory<byte> body, bool chat, string? sessionHeader)
    {
        if (JsonRequestBody.Problem(body.Span) is { } problem)
        {
            throw GatewayError.BadRequest(problem, null, "invalid_json");
        }

        // Checked above, as the worker checks it: this parse cannot fail, and no string read below can throw.
        using var document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = JsonRequestBody.MaxDepth });
        return Inspect(document.RootElement, body.Length, chat, sessionHeader);
    }

    /// <summary>
    /// The routing fields of a gRPC <c>Inference/Generate</c> call's body (its one length-prefixed message), rendered
    /// like the OpenAI requests (raw prompt as a completion's, chat input as a chat's), so gRPC clients get prefix
    /// affinity too. Null when the body is not one plain message (compressed, or not a GenerateRequest): the call then
    /// goes on without affinity and the worker answers it precisely.
    /// </summary>
    public InspectedRequest? InspectGenerate(ReadOnlySpan<byte> body, string? sessionHeader)
    {
        if (body.Length < 5 || body[0] != 0 || BinaryPrimitives.ReadUInt32BigEndian(body[1..5]) != (uint)(body.Length - 5))
        {
            return null;
        }

        GenerateRequest request;
        try
        {
            request = GenerateRequest.Parser.ParseFrom(body[5..]);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }

        using var canonical = new PooledBufferWriter(body.Length);
        var historyBytes = 0L;
        if (request.InputCase == GenerateRequest.InputOneofCase.Chat)
        {
            historyBytes = WriteChat(request.Chat, canonical);
        }
        else
        {
            WriteText(request.Prompt, canonical);
        }

        return new InspectedRequest
        {
            Model = request.Model,
            Stream = true,
            MaxTokens = request.MaxTokens > 0 ? (int)Math.Min(request.MaxTokens, int.MaxValue) : null,
            PromptBytes = canonical.WrittenCount,
            HistoryBytes = historyBytes,
            Blocks = hasher.Hash(request.Model, canonical.WrittenSpan, Contracts.PrefixBlockHeader.MaxBlocks),
            SessionKey = string.IsNullOrEmpty(sessionHeader) ? null : hasher.Tag("session", sessionHeader),
        };
    }

    /// <summary>Renders the chat; returns where its last assistant message starts (0: none), as <see cref="InspectedRequest.HistoryBytes"/>.</summary>
    private static long WriteChat(ChatInput chat, PooledBufferWriter output)
    {
        var historyBytes = 0L;
        if (chat.Tools.Count > 0)
        {
            foreach (var tool in chat.Tools)
            {
                WriteMessageJson(tool, output);
            }

            output.Write([MessageSeparator]);
        }

        foreach (var message in chat.Messages)
        {
            if (message.Role == AssistantRole)
            {
                historyBytes = output.WrittenCount;
            }

            WriteText(message.Role, output);
            output.Write([FieldSeparator]);
            WriteText(message.Content, output);
            if (message.ToolCalls.Count > 0)
            {
                output.Write([FieldSeparator]);
                foreach (var call in message.ToolCalls)
                {
                    WriteMessageJson(call, output);
                }
            }

            output.Write([MessageSeparator]);
        }

        return historyBytes;
    }

    /// <summary>A protobuf message as its JSON form (deterministic: fields in number order), marked as JSON like <see cref="WriteJson"/>.</summary>
    private static void WriteMessageJson(IMessage message, PooledBufferWriter output)
    {
        output.Write([JsonMarker]);
        var json = JsonFormatter.Default.Format(message);
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(json.Length));
        output.Advance(Encoding.UTF8.GetBytes(json, span));
    }

    private InspectedRequest Inspect(JsonElement root, int bodyLength, bool chat, string? sessionHeader)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw GatewayError.BadRequest("The request body must be a JSON object.", null, "invalid_type");
        }

        var model = root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String && m.GetString() is { Length: > 0 } name
            ? name
            : throw GatewayError.BadRequest("'model' is required and must be a non-empty string.", "model", "missing_required_parameter");
        var stream = root.TryGetProperty("stream", out var s) && s.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False or JsonValueKind.Null => false,
            _ => throw GatewayError.BadRequest("'stream' must be a boolean.", "stream", "invalid_type"),
        };
        int? maxTokens = null;
        foreach (var field in (string[])["max_tokens", "max_completion_tokens"])
        {
            if (root.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null)
            {
                maxTokens = value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) && n > 0
                    ? n : throw GatewayError.BadRequest($"'{field}' must be a positive integer.", field, "invalid_type");
            }
        }

        var user = root.TryGetProperty("user", out var u) ? u.ValueKind switch
        {
            JsonValueKind.String => u.GetString(),
            JsonValueKind.Null => null,
            _ => throw GatewayError.BadRequest("'user' must be a string.", "user", "invalid_type"),
        } : null;
        var session = !string.IsNullOrEmpty(sessionHeader) ? sessionHeader : user;

        // The canonical form is shorter than the body but for re-escaped JSON values: one rented buffer, rarely grown.
        using var canonical = new PooledBufferWriter(bodyLength);
        var historyBytes = 0L;
        if (chat)
        {
            historyBytes = WriteChat(root, canonical);
        }
        else
        {
            WritePrompt(root, canonical);
        }

        return new InspectedRequest
        {
            Model = model,
            Stream = stream,
            MaxTokens = maxTokens,
            PromptBytes = canonical.WrittenCount,
            HistoryBytes = historyBytes,
            Blocks = hasher.Hash(model, canonical.WrittenSpan, Contracts.PrefixBlockHeader.MaxBlocks),
            SessionKey = string.IsNullOrEmpty(session) ? null : hasher.Tag("session", session),
        };
    }

    /// <summary>Renders the chat; returns where its last assistant message starts (0: none), as <see cref="InspectedRequest.HistoryBytes"/>.</summary>
    private static long WriteChat(JsonElement root, PooledBufferWriter output)
    {
        var historyBytes = 0L;
        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
        {
            throw GatewayError.BadRequest("'messages' is required and must be an array.", "messages", "missing_required_parameter");
        }

        if (messages.GetArrayLength() == 0)
        {
            throw GatewayError.BadRequest("'messages' must contain at least one message.", "messages", "invalid_value");
        }

        // Tools come first: the chat template renders them into the system prompt, ahead of every message.
        if (root.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array)
        {
            WriteJson(tools, output);
            output.Write([MessageSeparator]);
        }

        var index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object)
            {
                throw GatewayError.BadRequest($"messages[{index}] must be an object.", $"messages[{index}]", "invalid_type");
            }

            if (!message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
            {
                throw GatewayError.BadRequest($"messages[{index}].role is required and must be a string.", $"messages[{index}].role", "missing_required_parameter");
            }

            if (role.ValueEquals(AssistantRole))
            {
                historyBytes = output.WrittenCount;
            }

            WriteString(role, output);
            output.Write([FieldSeparator]);
            if (message.TryGetProperty("content", out var content))
            {
                if (content.ValueKind == JsonValueKind.String)
                {
                    WriteString(content, output);
                }
                else if (content.ValueKind != JsonValueKind.Null)
                {
                    WriteJson(content, output);
                }
            }

            if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind != JsonValueKind.Null)
            {
                output.Write([FieldSeparator]);
                WriteJson(calls, output);
            }

            output.Write([MessageSeparator]);
            index++;
        }

        return historyBytes;
    }

    private static void WritePrompt(JsonElement root, PooledBufferWriter output)
    {
        if (!root.TryGetProperty("prompt", out var prompt) || prompt.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            throw GatewayError.BadRequest("'prompt' is required.", "prompt", "missing_required_parameter");
        }

        if (prompt.ValueKind == JsonValueKind.String)
        {
            WriteString(prompt, output);
        }
        else if (prompt.ValueKind == JsonValueKind.Array)
        {
            WriteJson(prompt, output);
        }
        else
        {
            throw GatewayError.BadRequest("'prompt' must be a string or an array.", "prompt", "invalid_type");
        }
    }

    private static void WriteText(string text, PooledBufferWriter output)
    {
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        CommitText(span, Encoding.UTF8.GetBytes(text, span), output);
    }

    /// <summary>
    /// A JSON string's text, as UTF-8, straight from the body: its raw bytes when it has no escape (valid JSON holds no
    /// raw control byte, so none is reserved), else unescaped in place (never longer than its escaped form). Either way
    /// the bytes <see cref="WriteText"/> would write for <see cref="JsonElement.GetString"/>, without the string.
    /// </summary>
    private static void WriteString(JsonElement value, PooledBufferWriter output)
    {
        var raw = JsonMarshal.GetRawUtf8Value(value); // with its quotes
        var text = raw[1..^1];
        if (text.IndexOf((byte)'\\') < 0)
        {
            output.Write(text);
            return;
        }

        var reader = new Utf8JsonReader(raw);
        reader.Read();
        var span = output.GetSpan(text.Length);
        CommitText(span, reader.CopyString(span), output);
    }

    /// <summary>Commits text just written at the start of <paramref name="span"/>, escaping the separator bytes it holds.</summary>
    private static void CommitText(Span<byte> span, int written, PooledBufferWriter output)
    {
        if (span[..written].IndexOfAny(Reserved) < 0)
        {
            output.Advance(written); // the usual case: no reserved byte in the text
            return;
        }

        var raw = span[..written].ToArray();
        foreach (var b in raw)
        {
            if (Reserved.Contains(b))
            {
                output.Write([EscapeByte, b]);
            }
            else
            {
                output.Write([b]);
            }
        }
    }

    private static void WriteJson(JsonElement element, PooledBufferWriter output)
    {
        output.Write([JsonMarker]);
        using var writer = new Utf8JsonWriter(output);
        element.WriteTo(writer);
    }
}
