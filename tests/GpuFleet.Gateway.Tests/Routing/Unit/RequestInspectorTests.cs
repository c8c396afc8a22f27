using System.Text;
using System.Text.Json;
using GpuFleet.Gateway.Forwarding;
using GpuFleet.Gateway.Routing;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>What the gateway reads from an OpenAI body: the canonical prompt's block chain, the routed fields and every 400.</summary>
public sealed class RequestInspectorTests
{
    private const int BlockBytes = 64;
    private static readonly byte[] Key = Enumerable.Range(100, 32).Select(i => (byte)i).ToArray();
    private readonly PrefixHasher _hasher = new(Key, BlockBytes);
    private readonly RequestInspector _inspector;

    public RequestInspectorTests() => _inspector = new RequestInspector(_hasher);

    private const string SystemPrompt = "You are a careful assistant. Answer in full sentences and cite the manual where you can.";
    private const string Question = "How do I replace the fuel filter on a 1998 diesel tractor, step by step, with the engine cold?";

    private InspectedRequest Chat(string json, string? session = null) => _inspector.Inspect(Encoding.UTF8.GetBytes(json), chat: true, session);

    private InspectedRequest Completion(string json) => _inspector.Inspect(Encoding.UTF8.GetBytes(json), chat: false, null);

    private static string Body(params object[] messages) => JsonSerializer.Serialize(new { model = "m", messages });

    [Fact]
    public void The_canonical_form_is_tools_then_role_and_content_per_message_with_the_documented_separators()
    {
        const string json = """
            {"model":"m","tools":[{"type":"function","function":{"name":"f"}}],
             "messages":[{"role":"system","content":"Short system prompt, long enough to fill a block."},{"role":"user","content":[{"type":"text","text":"T"}]},
                         {"role":"assistant","content":null,"tool_calls":[{"id":"c1"}]}]}
            """;
        var canonical = Encoding.UTF8.GetBytes(
            "\u001c" + """[{"type":"function","function":{"name":"f"}}]""" + "\u001e"
            + "system\u001fShort system prompt, long enough to fill a block.\u001e"
            + "user\u001f\u001c" + """[{"type":"text","text":"T"}]""" + "\u001e"
            + "assistant\u001f\u001f\u001c" + """[{"id":"c1"}]""" + "\u001e");
        Assert.True(canonical.Length > 2 * BlockBytes);

        var inspected = Chat(json);
        Assert.Equal(canonical.Length, inspected.PromptBytes);
        Assert.Equal(_hasher.Hash("m", canonical, 1024), inspected.Blocks);
        Assert.Equal(canonical.Length / BlockBytes, inspected.Blocks.Count);
    }

    [Fact]
    public void Whitespace_escapes_and_unrelated_fields_do_not_change_the_chain()
    {
        const string compact = """{"model":"m","tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}],"messages":[{"role":"system","content":"You are a careful assistant. Answer in full sentences and cite the manual."},{"role":"user","content":[{"type":"text","text":"Fuel filter, step by step please, engine cold."}]},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{}"}}]}]}""";
        const string pretty = """
            {
              "stream" : false,
              "temperature": 0.2,
              "model": "m",
              "tools": [ { "type": "function",
                           "function": { "name": "lookup", "parameters": { "type": "object" } } } ],
              "messages": [
                { "role": "system", "content": "You are a careful assistant. Answer in full sentences and cite the manual." },
                { "role" : "user", "content" : [ { "type" : "text", "text" : "Fuel filter, step by step please, engine cold." } ] },
                { "role": "assistant", "content": null,
                  "tool_calls": [ { "id": "call_1", "type": "function", "function": { "name": "lookup", "arguments": "{}" } } ] }
              ],
              "user": null
            }
            """;
        // The same text with JSON escapes, in a string content and inside an array content.
        var escaped = compact.Replace("You are", "\\u0059ou are", StringComparison.Ordinal).Replace("Fuel filter", "F\\u0075el filter", StringComparison.Ordinal);

        var a = Chat(compact);
        Assert.True(a.Blocks.Count >= 4, $"{a.Blocks.Count} blocks");
        foreach (var other in new[] { Chat(pretty), Chat(escaped) })
        {
            Assert.Equal(a.PromptBytes, other.PromptBytes);
            Assert.Equal(a.Blocks, other.Blocks);
        }
    }

    [Fact]
    public void Key_order_inside_tools_and_content_parts_is_kept_so_it_changes_the_chain()
    {
        // Only formatting is normalized: a different key order is different text for the worker's template too.
        const string a = """{"model":"m","tools":[{"type":"function","function":{"name":"lookup","description":"Looks a part number up in the service manual."}}],"messages":[{"role":"user","content":[{"type":"text","text":"Which filter fits the 1998 model with the turbo engine?"}]}]}""";
        const string b = """{"model":"m","tools":[{"function":{"description":"Looks a part number up in the service manual.","name":"lookup"},"type":"function"}],"messages":[{"role":"user","content":[{"text":"Which filter fits the 1998 model with the turbo engine?","type":"text"}]}]}""";
        var first = Chat(a);
        var second = Chat(b);
        Assert.Equal(first.PromptBytes, second.PromptBytes);
        Assert.NotEmpty(first.Blocks);
        Assert.NotEqual(first.Blocks, second.Blocks);
    }

    [Fact]
    public void Each_turn_of_a_growing_conversation_starts_with_the_previous_turns_chain()
    {
        var messages = new List<object> { new { role = "system", content = SystemPrompt }, new { role = "user", content = Question } };
        var previous = Chat(Body([.. messages]));
        Assert.True(previous.Blocks.Count >= 2);
        for (var turn = 0; turn < 4; turn++)
        {
            messages.Add(new { role = "assistant", content = $"Step {turn}: loosen the clamp, drain the bowl into a tray and keep the old seal for comparison." });
            messages.Add(new { role = "user", content = $"Done with step {turn}. What next?" });
            var next = Chat(Body([.. messages]));
            Assert.True(next.Blocks.Count > previous.Blocks.Count);
            Assert.Equal(previous.Blocks, next.Blocks.Take(previous.Blocks.Count));
            previous = next;
        }
    }

    [Fact]
    public void The_history_is_the_prompt_up_to_the_last_assistant_message_which_is_what_the_previous_turn_sent()
    {
        var messages = new List<object> { new { role = "system", content = SystemPrompt }, new { role = "user", content = Question } };
        var first = Chat(Body([.. messages]));
        Assert.Equal(0, first.HistoryBytes); // no assistant turn yet: a new conversation
        Assert.Equal(0, Completion("""{"model":"m","prompt":"Once upon a time"}""").HistoryBytes);

        for (var turn = 0; turn < 3; turn++)
        {
            var previous = Chat(Body([.. messages]));
            messages.Add(new { role = "assistant", content = $"Step {turn}: loosen the clamp and drain the bowl." });
            messages.Add(new { role = "user", content = $"Done with step {turn}. What next?" });
            var next = Chat(Body([.. messages]));
            Assert.Equal(previous.PromptBytes, next.HistoryBytes);
        }

        // An assistant message with tool calls, then the tool's result: the history still ends where the assistant's turn starts.
        var beforeCall = Chat(Body([.. messages]));
        messages.Add(new { role = "assistant", content = (string?)null, tool_calls = new[] { new { id = "c1", type = "function", function = new { name = "ls", arguments = "{}" } } } });
        messages.Add(new { role = "tool", tool_call_id = "c1", content = "README.md\nsrc" });
        Assert.Equal(beforeCall.PromptBytes, Chat(Body([.. messages])).HistoryBytes);
    }

    [Fact]
    public void Editing_an_early_message_keeps_only_the_blocks_before_the_edit()
    {
        var original = Chat(Body(new { role = "system", content = SystemPrompt }, new { role = "user", content = Question }));
        var edited = Chat(Body(new { role = "system", content = SystemPrompt }, new { role = "user", content = Question.Replace("1998", "1999", StringComparison.Ordinal) }));
        var firstDifference = (SystemPrompt.Length + "system".Length + 2 + "user".Length + 1 + Question.IndexOf("1998", StringComparison.Ordinal) + 3) / BlockBytes;
        Assert.Equal(original.Blocks.Take(firstDifference), edited.Blocks.Take(firstDifference));
        Assert.All(Enumerable.Range(firstDifference, original.Blocks.Count - firstDifference), i => Assert.NotEqual(original.Blocks[i], edited.Blocks[i]));
    }

    [Fact]
    public void Tools_come_first_so_adding_or_changing_them_changes_the_whole_chain()
    {
        var messages = new object[] { new { role = "system", content = SystemPrompt }, new { role = "user", content = Question } };
        var plain = Chat(JsonSerializer.Serialize(new { model = "m", messages }));
        var withTools = Chat(JsonSerializer.Serialize(new { model = "m", messages, tools = new[] { new { type = "function", function = new { name = "manual" } } } }));
        var otherTools = Chat(JsonSerializer.Serialize(new { model = "m", messages, tools = new[] { new { type = "function", function = new { name = "manuals" } } } }));
        var nullTools = Chat(JsonSerializer.Serialize(new { model = "m", messages, tools = (object?)null }));

        Assert.Equal(plain.Blocks, nullTools.Blocks);
        Assert.Empty(plain.Blocks.Intersect(withTools.Blocks));
        Assert.Empty(withTools.Blocks.Intersect(otherTools.Blocks));
    }

    [Fact]
    public void The_model_is_part_of_the_chain()
    {
        var a = Chat(JsonSerializer.Serialize(new { model = "a", messages = new[] { new { role = "user", content = Question } } }));
        var b = Chat(JsonSerializer.Serialize(new { model = "b", messages = new[] { new { role = "user", content = Question } } }));
        Assert.Equal(a.PromptBytes, b.PromptBytes);
        Assert.NotEmpty(a.Blocks);
        Assert.Empty(a.Blocks.Intersect(b.Blocks));
    }

    [Fact]
    public void Routed_fields_are_read()
    {
        var request = Chat("""{"model":"qwen","stream":true,"max_tokens":77,"messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal("qwen", request.Model);
        Assert.True(request.Stream);
        Assert.Equal(77, request.MaxTokens);
        Assert.Equal("user\u001fhi\u001e".Length, request.PromptBytes);
        Assert.Empty(request.Blocks);
        Assert.Null(request.SessionKey);

        var other = Chat("""{"model":"qwen","stream":null,"max_tokens":null,"max_completion_tokens":12,"messages":[{"role":"user"}]}""");
        Assert.False(other.Stream);
        Assert.Equal(12, other.MaxTokens);
        Assert.Equal(int.MaxValue, Chat("""{"model":"qwen","max_tokens":2147483647,"messages":[{"role":"user"}]}""").MaxTokens);
    }

    [Fact]
    public void Completions_hash_a_string_prompt_as_its_utf8_text_and_an_array_prompt_as_compact_json()
    {
        var text = string.Concat(Enumerable.Repeat("Once upon a time, in a valley with a river ", 5)) + "é";
        var request = Completion(JsonSerializer.Serialize(new { model = "m", prompt = text, max_tokens = 5 }));
        var utf8 = Encoding.UTF8.GetBytes(text);
        Assert.Equal(utf8.Length, request.PromptBytes);
        Assert.Equal(_hasher.Hash("m", utf8, 1024), request.Blocks);
        Assert.Equal(5, request.MaxTokens);

        var tokens = Completion("""{"model":"m","prompt":[ 1, 2, 3 ]}""");
        Assert.Equal("\u001c[1,2,3]".Length, tokens.PromptBytes);
    }

    [Fact]
    public void Escaped_text_renders_as_the_utf8_of_its_decoded_string()
    {
        // Every kind of escape a client sends (newlines, quotes, backslashes, \u escapes of non-ASCII and of a surrogate
        // pair, raw UTF-8 beside them), and a separator byte, which can only arrive escaped and is escaped in the rendering.
        const string json = """{"model":"m","messages":[{"role":"us\u0065r","content":"line 1\nline \"2\"\tC:\\src caf\u00e9 café \ud83d\ude00 \u001e end, and plain text after it, more of it, and more again, so that the rendering fills at least two blocks of sixty-four bytes"}]}""";
        using var document = JsonDocument.Parse(json);
        var decoded = document.RootElement.GetProperty("messages")[0].GetProperty("content").GetString()!;
        var expected = Encoding.UTF8.GetBytes("user\u001f" + decoded.Replace("\u001e", "\u001d\u001e", StringComparison.Ordinal) + "\u001e");

        var inspected = Chat(json);

        Assert.Equal(expected.Length / BlockBytes, inspected.Blocks.Count);
        Assert.True(inspected.Blocks.Count >= 2);
        Assert.Equal(expected.Length, inspected.PromptBytes);
        Assert.Equal(_hasher.Hash("m", expected, 1024), inspected.Blocks);
    }

    [Fact]
    public void A_canonical_prompt_longer_than_its_body_is_rendered_whole()
    {
        // Tools are re-serialized compactly, which escapes non-ASCII text: six bytes for each two-byte é of the body.
        var tools = new object[] { new { type = "function", function = new { name = "f", description = new string('é', 3000) } } };
        var raw = new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }; // é as two bytes
        var body = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { model = "m", tools, messages = new[] { new { role = "user", content = "hi" } } }, raw));
        var expected = Encoding.UTF8.GetBytes("\u001c" + JsonSerializer.Serialize(tools) + "\u001e" + "user\u001fhi\u001e");
        Assert.True(expected.Length > 2 * body.Length);

        var inspected = _inspector.Inspect(body, chat: true, null);

        Assert.Equal(expected.Length, inspected.PromptBytes);
        Assert.Equal(_hasher.Hash("m", expected, 1024), inspected.Blocks);
    }

    [Fact]
    public void Text_holding_the_separator_bytes_cannot_render_like_another_conversation()
    {
        var padding = new string('x', 3 * BlockBytes);
        var reply = "ok" + new string('y', 2 * BlockBytes); // so that the blocks after the separators are full and hashed
        var two = Chat(Body(new { role = "user", content = padding }, new { role = "assistant", content = reply }));

        // One message whose text spells the separators of the two-message form renders differently (escaped)...
        var forged = Chat(Body(new { role = "user", content = padding + "\u001eassistant\u001f" + reply }));
        Assert.NotEqual(two.Blocks, forged.Blocks);
        Assert.Equal(two.PromptBytes + 2, forged.PromptBytes); // the two separators, each escaped by one byte

        // ...and a string content cannot pass for the JSON of content parts.
        var parts = Chat(Body(new { role = "user", content = new object[] { new { type = "text", text = padding } } }));
        var spelled = Chat(Body(new { role = "user", content = JsonSerializer.Serialize(new object[] { new { type = "text", text = padding } }) }));
        Assert.NotEqual(parts.Blocks[0], spelled.Blocks[0]);

        // The blocks before the forged text are untouched: escaping changes nothing else.
        Assert.Equal(two.Blocks[0], forged.Blocks[0]);
    }

    [Fact]
    public void The_session_header_beats_the_user_field_and_both_are_keyed_tags()
    {
        const string withUser = """{"model":"m","user":"alice","messages":[{"role":"user","content":"hi"}]}""";
        const string withoutUser = """{"model":"m","messages":[{"role":"user","content":"hi"}]}""";

        Assert.Equal(_hasher.Tag("session", "conv-7"), Chat(withUser, "conv-7").SessionKey);
        Assert.Equal(_hasher.Tag("session", "alice"), Chat(withUser, null).SessionKey);
        Assert.Equal(_hasher.Tag("session", "alice"), Chat(withUser, "").SessionKey);
        Assert.Equal(_hasher.Tag("session", "conv-7"), Chat(withoutUser, "conv-7").SessionKey);
        Assert.Null(Chat(withoutUser, null).SessionKey);
        Assert.Null(Chat("""{"model":"m","user":"","messages":[{"role":"user"}]}""", null).SessionKey);
        Assert.Null(Chat("""{"model":"m","user":null,"messages":[{"role":"user"}]}""", null).SessionKey);
        Assert.DoesNotContain("alice", Chat(withUser, null).SessionKey!, StringComparison.Ordinal);
    }

    public static TheoryData<string, bool, string, string?> BadRequests => new()
    {
        // body, chat, code, param
        { "", true, "invalid_json", null },
        { "{", true, "invalid_json", null },
        { "{\"model\":\"m\",}", true, "invalid_json", null },
        { "{\"model\":\"m\"} trailing", true, "invalid_json", null },
        { "[]", true, "invalid_type", null },
        { "\"text\"", true, "invalid_type", null },
        { "42", true, "invalid_type", null },
        { "null", true, "invalid_type", null },
        { "{\"messages\":[{\"role\":\"user\"}]}", true, "missing_required_parameter", "model" },
        { "{\"model\":\"\",\"messages\":[{\"role\":\"user\"}]}", true, "missing_required_parameter", "model" },
        { "{\"model\":7,\"messages\":[{\"role\":\"user\"}]}", true, "missing_required_parameter", "model" },
        { "{\"model\":null,\"messages\":[{\"role\":\"user\"}]}", true, "missing_required_parameter", "model" },
        { "{\"model\":\"m\"}", true, "missing_required_parameter", "messages" },
        { "{\"model\":\"m\",\"messages\":\"hi\"}", true, "missing_required_parameter", "messages" },
        { "{\"model\":\"m\",\"messages\":[]}", true, "invalid_value", "messages" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"},\"hi\"]}", true, "invalid_type", "messages[1]" },
        { "{\"model\":\"m\",\"messages\":[null]}", true, "invalid_type", "messages[0]" },
        { "{\"model\":\"m\",\"messages\":[{\"content\":\"hi\"}]}", true, "missing_required_parameter", "messages[0].role" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"},{\"role\":3}]}", true, "missing_required_parameter", "messages[1].role" },
        { "{\"model\":\"m\",\"stream\":\"true\",\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "stream" },
        { "{\"model\":\"m\",\"stream\":1,\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "stream" },
        { "{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "max_tokens" },
        { "{\"model\":\"m\",\"max_tokens\":-5,\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "max_tokens" },
        { "{\"model\":\"m\",\"max_tokens\":1.5,\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "max_tokens" },
        { "{\"model\":\"m\",\"max_tokens\":\"10\",\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "max_tokens" },
        { "{\"model\":\"m\",\"max_tokens\":3000000000,\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "max_tokens" },
        { "{\"model\":\"m\",\"max_completion_tokens\":0,\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "max_completion_tokens" },
        { "{\"model\":\"m\",\"user\":5,\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "user" },
        { "{\"model\":\"m\",\"user\":{},\"messages\":[{\"role\":\"user\"}]}", true, "invalid_type", "user" },
        { "{\"model\":\"m\"}", false, "missing_required_parameter", "prompt" },
        { "{\"model\":\"m\",\"prompt\":null}", false, "missing_required_parameter", "prompt" },
        { "{\"model\":\"m\",\"prompt\":5}", false, "invalid_type", "prompt" },
        { "{\"model\":\"m\",\"prompt\":{\"text\":\"hi\"}}", false, "invalid_type", "prompt" },
        { "{\"model\":\"m\",\"prompt\":true}", false, "invalid_type", "prompt" },
        { "{\"prompt\":\"hi\"}", false, "missing_required_parameter", "model" },
        { "{\"model\":\"m\",\"stream\":\"yes\",\"prompt\":\"hi\"}", false, "invalid_type", "stream" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public void Bad_input_is_a_400_from_the_gateway_with_the_documented_code(string body, bool chat, string code, string? param)
    {
        var error = Assert.Throws<GatewayError>(() => _inspector.Inspect(Encoding.UTF8.GetBytes(body), chat, null));
        Assert.Equal(400, error.Status);
        Assert.Equal("invalid_request_error", error.Type);
        Assert.Equal(code, error.Code);
        Assert.Equal(param, error.Param);
    }

    [Fact]
    public void Json_nested_deeper_than_64_levels_is_a_400()
    {
        var deep = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":" + new string('[', 70) + new string(']', 70) + "}]}";
        var error = Assert.Throws<GatewayError>(() => Chat(deep));
        Assert.Equal(400, error.Status);
        Assert.Equal("invalid_json", error.Code);
    }

    [Fact]
    public void Invalid_utf8_outside_strings_is_a_400()
    {
        byte[] body = [.. "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]"u8, 0xFF, (byte)'}'];
        var error = Assert.Throws<GatewayError>(() => _inspector.Inspect(body, chat: true, null));
        Assert.Equal(400, error.Status);
        Assert.Equal("invalid_json", error.Code);
    }

    [Theory]
    [InlineData("model")]
    [InlineData("role")]
    [InlineData("content")]
    [InlineData("user")]
    [InlineData("prompt")]
    public void Invalid_utf8_inside_a_string_the_gateway_reads_is_a_400_not_a_500(string where)
    {
        var bad = Encoding.Latin1.GetString([0xC3, 0x28]); // an invalid two-byte sequence, smuggled through Latin-1
        var json = where switch
        {
            "model" => "{\"model\":\"m" + bad + "\",\"messages\":[{\"role\":\"user\"}]}",
            "role" => "{\"model\":\"m\",\"messages\":[{\"role\":\"us" + bad + "\"}]}",
            "content" => "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi " + bad + "\"}]}",
            "user" => "{\"model\":\"m\",\"user\":\"u" + bad + "\",\"messages\":[{\"role\":\"user\"}]}",
            _ => "{\"model\":\"m\",\"prompt\":\"p" + bad + "\"}",
        };
        var body = Encoding.Latin1.GetBytes(json);
        var error = Assert.Throws<GatewayError>(() => _inspector.Inspect(body, chat: where != "prompt", null));
        Assert.Equal(400, error.Status);
        Assert.Equal("invalid_json", error.Code);
    }

    [Theory]
    [InlineData("{\"model\":\"m\\ud800\",\"messages\":[{\"role\":\"user\"}]}", true)]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"\\udc00\"}]}", true)]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800x\"}]}", true)]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\\ud800\"}]}]}", true)]
    [InlineData("{\"model\":\"m\",\"\\ud800\":1,\"messages\":[{\"role\":\"user\"}]}", true)]
    [InlineData("{\"model\":\"m\",\"stop\":\"\\ud800\",\"messages\":[{\"role\":\"user\"}]}", true)]
    [InlineData("{\"model\":\"m\",\"prompt\":\"\\ud800\"}", false)]
    public void A_lone_surrogate_escape_anywhere_is_a_400_not_a_500(string json, bool chat)
    {
        var error = Assert.Throws<GatewayError>(() => _inspector.Inspect(Encoding.UTF8.GetBytes(json), chat, null));
        Assert.Equal(400, error.Status);
        Assert.Equal("invalid_json", error.Code);
    }
}
