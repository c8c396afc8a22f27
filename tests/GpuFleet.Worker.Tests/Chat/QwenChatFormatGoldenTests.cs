using System.Text.Json;
using GpuFleet.Worker.Chat;

namespace GpuFleet.Worker.Tests.Chat;

/// <summary>
/// The renderer against prompts the real Jinja template produced (Goldens/generate.py), from the same
/// OpenAI-style JSON inputs.
/// </summary>
public sealed class QwenChatFormatGoldenTests
{
    public static TheoryData<string> Names => new(QwenChatGoldens.All.Select(g => g.Name));

    [Theory]
    [MemberData(nameof(Names))]
    public void Render_matches_the_jinja_template(string name)
    {
        var golden = QwenChatGoldens.All.Single(g => g.Name == name);
        var (messages, options) = FromOpenAiJson(golden.InputJson);

        if (golden.Error is not null)
        {
            var error = Assert.Throws<ChatFormatException>(() => QwenChatFormat.Render(messages, options));
            Assert.Equal(golden.Error, error.Message);
        }
        else
        {
            Assert.Equal(golden.Expected, QwenChatFormat.Render(messages, options));
        }
    }

    [Fact]
    public void Goldens_cover_every_case_once()
    {
        Assert.Equal(18, QwenChatGoldens.All.Count);
        Assert.Equal(QwenChatGoldens.All.Count, QwenChatGoldens.All.Select(g => g.Name).Distinct().Count());
    }

    // What an OpenAI API layer does with a request body: messages, tools and the template switches.
    private static (List<ChatMessage> Messages, ChatRenderOptions Options) FromOpenAiJson(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement.Clone();
        var messages = root.GetProperty("messages").EnumerateArray().Select(ToMessage).ToList();
        List<ChatTool>? tools = null;
        if (root.TryGetProperty("tools", out var toolsJson))
        {
            tools = [.. toolsJson.EnumerateArray().Select(t => t.GetProperty("function")).Select(f => new ChatTool(
                f.GetProperty("name").GetString()!,
                f.TryGetProperty("description", out var d) ? d.GetString() : null,
                f.TryGetProperty("parameters", out var p) ? p : null))];
        }

        var options = new ChatRenderOptions
        {
            Tools = tools,
            AddGenerationPrompt = !root.TryGetProperty("add_generation_prompt", out var gen) || gen.GetBoolean(),
            EnableThinking = root.TryGetProperty("enable_thinking", out var thinking) ? thinking.GetBoolean() : null,
        };
        return (messages, options);
    }

    private static ChatMessage ToMessage(JsonElement m)
    {
        string? Text(string property) => m.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        List<ChatToolCall>? calls = null;
        if (m.TryGetProperty("tool_calls", out var callsJson))
        {
            calls = [.. callsJson.EnumerateArray().Select(c => new ChatToolCall(
                c.GetProperty("id").GetString()!,
                c.GetProperty("function").GetProperty("name").GetString()!,
                c.GetProperty("function").GetProperty("arguments").GetString()!))];
        }

        return new ChatMessage(m.GetProperty("role").GetString()!, Text("content"))
        {
            ToolCalls = calls,
            ReasoningContent = Text("reasoning_content"),
            ToolCallId = Text("tool_call_id"),
            Name = Text("name"),
        };
    }
}
