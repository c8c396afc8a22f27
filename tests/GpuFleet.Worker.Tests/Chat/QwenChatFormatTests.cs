using System.Text.Json;
using GpuFleet.Worker.Chat;

namespace GpuFleet.Worker.Tests.Chat;

public sealed class QwenChatFormatTests
{
    private static readonly ChatMessage[] Hello = [new("user", "Hi")];

    [Theory]
    [InlineData(0.1, "0.1")]
    [InlineData(1.0 / 3, "0.3333333333333333")]
    [InlineData(1e22, "1e+22")]
    [InlineData(1e-7, "1e-07")]
    [InlineData(double.Epsilon, "5e-324")]
    [InlineData(double.MaxValue, "1.7976931348623157e+308")]
    [InlineData(123456.789, "123456.789")]
    [InlineData(9007199254740993.0, "9007199254740992.0")]
    [InlineData(0.5, "0.5")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(1e16, "1e+16")]
    [InlineData(12345678901234567.0, "1.2345678901234568e+16")]
    [InlineData(0.001, "0.001")]
    [InlineData(0.0001234, "0.0001234")]
    [InlineData(-2.5e-5, "-2.5e-05")]
    [InlineData(100.0, "100.0")]
    [InlineData(3.14159e-10, "3.14159e-10")]
    [InlineData(1.4142135623730951e20, "1.4142135623730951e+20")]
    [InlineData(-0.0, "-0.0")]
    public void Float_text_is_pythons_repr(double value, string python)
    {
        // Expected values printed by Python 3.11's repr().
        Assert.Equal(python, PythonText.FloatRepr(value));
    }

    [Fact]
    public void Content_parts_are_joined_without_separator_and_media_is_refused()
    {
        Assert.Equal("ab", QwenChatFormat.JoinContentParts([new("text", "a"), new("text", "b")]));

        var image = Assert.Throws<ChatFormatException>(() => QwenChatFormat.JoinContentParts([new("text", "a"), new("image_url", null)]));
        Assert.IsAssignableFrom<ArgumentException>(image);
        Assert.Contains("image_url", image.Message, StringComparison.Ordinal);
        Assert.Throws<ChatFormatException>(() => QwenChatFormat.JoinContentParts([new("video", null)]));
        Assert.Equal("Unexpected item type in content.", Assert.Throws<ChatFormatException>(() => QwenChatFormat.JoinContentParts([new("audio", null)])).Message);
    }

    [Fact]
    public void Tool_call_arguments_must_be_a_json_object_and_empty_means_none()
    {
        ChatMessage Call(string arguments) => new("assistant", null) { ToolCalls = [new("c1", "f", arguments)] };

        foreach (var bad in new[] { "[1]", "\"x\"", "{not json", "42" })
        {
            var error = Assert.Throws<ChatFormatException>(() => QwenChatFormat.Render([.. Hello, Call(bad)], new()));
            Assert.Equal("The arguments of tool call 'f' are not a JSON object.", error.Message);
        }

        var prompt = QwenChatFormat.Render([.. Hello, Call("")], new() { AddGenerationPrompt = false });
        Assert.EndsWith("<tool_call>\n<function=f>\n</function>\n</tool_call><|im_end|>\n", prompt, StringComparison.Ordinal);
    }

    [Fact]
    public void Tool_without_description_or_parameters_renders_only_its_name()
    {
        var prompt = QwenChatFormat.Render(Hello, new() { Tools = [new ChatTool("ping", null, null), new ChatTool("pong", null, default(JsonElement))] });

        Assert.Contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"ping\"}}\n{\"type\": \"function\", \"function\": {\"name\": \"pong\"}}\n</tools>", prompt, StringComparison.Ordinal);
    }

    [Fact]
    public void Tools_end_where_the_system_prompt_follows_them_and_is_zero_without_tools()
    {
        ChatMessage[] messages = [new("system", "You are the team's agent."), new("user", "Hi")];
        var withTools = QwenChatFormat.Render(messages, new() { Tools = [new ChatTool("ping", "Checks a host.", null)] });
        var otherSystem = QwenChatFormat.Render([new("system", "You work in the billing repository."), new("user", "Hi")],
            new() { Tools = [new ChatTool("ping", "Checks a host.", null)] });

        var end = QwenChatFormat.ToolsEnd(withTools);

        Assert.EndsWith("</IMPORTANT>", withTools[..end], StringComparison.Ordinal);
        Assert.StartsWith("\n\nYou are the team's agent.<|im_end|>", withTools[end..], StringComparison.Ordinal);
        Assert.Equal(withTools[..end], otherSystem[..QwenChatFormat.ToolsEnd(otherSystem)]);
        Assert.Equal(0, QwenChatFormat.ToolsEnd(QwenChatFormat.Render(messages, new())));
    }

    [Fact]
    public void Generation_starts_in_reasoning_unless_thinking_is_disabled()
    {
        Assert.True(QwenChatFormat.GenerationStartsInReasoning(new()));
        Assert.True(QwenChatFormat.GenerationStartsInReasoning(new() { EnableThinking = true }));
        Assert.False(QwenChatFormat.GenerationStartsInReasoning(new() { EnableThinking = false }));
        Assert.False(QwenChatFormat.GenerationStartsInReasoning(new() { AddGenerationPrompt = false }));
    }

    [Fact]
    public void Python_whitespace_includes_information_separators()
    {
        Assert.Equal("x", PythonText.Strip("\u001c\u001f\u3000\u00a0\u2028 x\u0085\t"));
        Assert.Equal("\u200bx", PythonText.Strip("\u200bx"));
    }
}
