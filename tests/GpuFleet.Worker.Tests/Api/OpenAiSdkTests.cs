using System.ClientModel;
using System.Text.Json;
using GpuFleet.Testing;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Models;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>The worker's OpenAI API driven by the official OpenAI .NET SDK, against a real worker process.</summary>
[Collection(LlamaCollection.Name)]
public sealed class OpenAiSdkTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    private static readonly BinaryData WeatherSchema = BinaryData.FromString("""
        {"type":"object","properties":{"city":{"type":"string","enum":["paris","rome","oslo"]},"days":{"type":"integer"}},"required":["city","days"]}
        """);

    private OpenAIClient Client => new(new ApiKeyCredential("not-needed"), new OpenAIClientOptions { Endpoint = fixture.Worker.OpenAiEndpoint });

    private ChatClient Chat => Client.GetChatClient(fixture.ModelId);

    [Fact]
    public async Task Models_lists_the_served_model()
    {
        var models = await Client.GetOpenAIModelClient().GetModelsAsync();

        var model = Assert.Single(models.Value);
        Assert.Equal(fixture.ModelId, model.Id);
        Assert.Equal("gpufleet", model.OwnedBy);
    }

    [Fact]
    public async Task Chat_completion_returns_text_finish_reason_and_usage()
    {
        var completion = (await Chat.CompleteChatAsync(
            [new SystemChatMessage("You are terse."), new UserChatMessage("Say hello.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0 })).Value;

        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.False(string.IsNullOrEmpty(completion.Content[0].Text));
        Assert.Equal(8, completion.Usage.OutputTokenCount);
        Assert.True(completion.Usage.InputTokenCount > 10);
        Assert.Equal(completion.Usage.InputTokenCount + 8, completion.Usage.TotalTokenCount);
        Assert.StartsWith("chatcmpl-", completion.Id, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Streaming_yields_the_same_text_as_a_whole_response_and_ends_with_usage()
    {
        ChatMessage[] messages = [new UserChatMessage("Stream me a line about rivers.")];
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 16, Temperature = 0 };
        var whole = (await Chat.CompleteChatAsync(messages, options)).Value;

        var text = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in Chat.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage);
        Assert.Equal(16, usage.OutputTokenCount);
        // The same prompt again: all but its last token came from the prefix cache.
        Assert.Equal(whole.Usage.InputTokenCount - 1, usage.InputTokenDetails.CachedTokenCount);
    }

    [Fact]
    public async Task Required_tool_choice_returns_a_parsed_tool_call_and_the_round_trip_continues()
    {
        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather forecast for a city", WeatherSchema);
        var options = new ChatCompletionOptions { Tools = { tool }, ToolChoice = ChatToolChoice.CreateRequiredChoice(), MaxOutputTokenCount = 200, Temperature = 0.7f, Seed = 3 };
        List<ChatMessage> messages = [new UserChatMessage("What's the weather in Rome for 3 days?")];

        var first = (await Chat.CompleteChatAsync(messages, options)).Value;

        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.StartsWith("call_", call.Id, StringComparison.Ordinal);
        using var arguments = JsonDocument.Parse(call.FunctionArguments);
        Assert.Contains(arguments.RootElement.GetProperty("city").GetString(), new[] { "paris", "rome", "oslo" });
        Assert.Equal(JsonValueKind.Number, arguments.RootElement.GetProperty("days").ValueKind);

        messages.Add(new AssistantChatMessage(first.ToolCalls));
        messages.Add(new ToolChatMessage(call.Id, """{"forecast":"sunny","high_c":24}"""));
        var second = (await Chat.CompleteChatAsync(messages, new ChatCompletionOptions { Tools = { tool }, MaxOutputTokenCount = 6, Temperature = 0 })).Value;

        Assert.Equal(ChatFinishReason.Length, second.FinishReason);
        Assert.True(second.Usage.InputTokenDetails.CachedTokenCount > 0, "the tool-call turn extends the cached conversation");
    }

    [Fact]
    public async Task Named_tool_choice_calls_that_function_while_streaming()
    {
        var weather = ChatTool.CreateFunctionTool("get_weather", "Weather forecast", WeatherSchema);
        var time = ChatTool.CreateFunctionTool("get_time", "Current time", BinaryData.FromString("""{"type":"object","properties":{"zone":{"type":"string","enum":["utc","cet"]}},"required":["zone"]}"""));
        var options = new ChatCompletionOptions { Tools = { weather, time }, ToolChoice = ChatToolChoice.CreateFunctionChoice("get_time"), MaxOutputTokenCount = 120 };

        var names = new List<string>();
        var arguments = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in Chat.CompleteChatStreamingAsync([new UserChatMessage("What time is it?")], options))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                if (call.FunctionName is { } name)
                {
                    names.Add(name);
                }

                arguments.Append(call.FunctionArgumentsUpdate?.ToString());
            }

            finish ??= update.FinishReason;
        }

        Assert.Equal(["get_time"], names);
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        using var parsed = JsonDocument.Parse(arguments.ToString());
        Assert.Contains(parsed.RootElement.GetProperty("zone").GetString(), new[] { "utc", "cet" });
    }

    [Fact]
    public async Task Unknown_model_is_a_404_and_too_long_prompt_a_400()
    {
        var wrong = Client.GetChatClient("no-such-model");
        var notFound = await Assert.ThrowsAsync<ClientResultException>(() => wrong.CompleteChatAsync([new UserChatMessage("Hi")]));
        Assert.Equal(404, notFound.Status);

        var tooLong = await Assert.ThrowsAsync<ClientResultException>(() => Chat.CompleteChatAsync([new UserChatMessage(new string('x', 9000))]));
        Assert.Equal(400, tooLong.Status);
        Assert.Contains("context_length_exceeded", tooLong.GetRawResponse()!.Content.ToString(), StringComparison.Ordinal);
    }
}
