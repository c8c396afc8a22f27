using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Routing;

/// <summary>
/// A coding agent against run.sh's shape of fleet (two workers, one gateway, qwen35 with the real Qwen tokenizer):
/// its ~55 KB first request (long system prompt, ten tools, streaming with usage, max_tokens 32000) is served; a second
/// conversation with the same system prompt and tools reuses them; the next turn reuses the previous prompt.
/// The model is the tiny one (CI has two cores) with a 16,384-token pool, so that a max_tokens beyond the remaining
/// context ends with finish_reason length in seconds.
/// </summary>
public sealed class CodingAgentTests : IAsyncLifetime
{
    private const string Model = "agent-qwen35";
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-agent-").FullName;
    private readonly List<WorkerProcess> _workers = [];
    private GatewayProcess? _gateway;

    public async Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        var model = Path.Combine(_directory, Model + ".gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen35, DemoModelSize.Tiny) { Tokenizer = TestModels.QwenTokenizer });
        _workers.AddRange(await Task.WhenAll(Enumerable.Range(0, 2).Select(i =>
            WorkerProcess.StartAsync(model, "--name", $"agent-w{i}", "--ctx-size", "16384", "--threads", "1"))));
        _gateway = await GatewayProcess.StartAsync([.. _workers.SelectMany(w => new[] { "--worker", w.BaseAddress.ToString().TrimEnd('/') })]);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await _gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 2);
    }

    [Fact]
    public async Task Agent_requests_are_served_and_share_the_system_prompt_and_the_previous_turn()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
        var system = AgentWorkload.SystemPrompt();
        var first = AgentWorkload.FirstRequest(Model, "Add input validation to Service3.", system);
        Assert.InRange(Encoding.UTF8.GetByteCount(first.ToJsonString()), 45_000, 70_000);

        var one = await StreamAsync(http, first);
        Assert.Equal("length", one.FinishReason); // greedy on fixed random weights: no end-of-turn token comes first
        Assert.InRange(one.PromptTokens, 8_000, 16_000); // the real tokenizer: ~4 bytes per token, not ~1.2
        // max_tokens 32000 is clamped to what the pool has left: the last sampled token needs no cell of its own.
        Assert.Equal(16_385, one.PromptTokens + one.CompletionTokens);

        var other = await StreamAsync(http, AgentWorkload.FirstRequest(Model, "Write tests for Service7.", system));
        Assert.True(other.CachedTokens >= 0.8 * other.PromptTokens, $"second conversation: {other.CachedTokens} of {other.PromptTokens} cached");
        Assert.Equal(one.Worker, other.Worker);

        var next = await StreamAsync(http, AgentWorkload.NextTurn(first, 1));
        Assert.Equal(one.Worker, next.Worker);
        Assert.True(next.CachedTokens >= 0.9 * one.PromptTokens, $"next turn: {next.CachedTokens} cached, previous prompt {one.PromptTokens}");
    }

    public async Task DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        foreach (var worker in _workers)
        {
            await worker.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    private async Task<StreamResult> StreamAsync(HttpClient http, JsonObject body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_gateway!.BaseAddress, "/v1/chat/completions"))
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? finish = null;
        JsonElement? usage = null;
        var done = false;
        while (await reader.ReadLineAsync() is { } line)
        {
            // The worker's usage comment is for the gateway: clients get the stream without it.
            Assert.False(line.StartsWith(": x-gpufleet-usage", StringComparison.Ordinal), "the usage comment reached the client");
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
            {
                continue;
            }

            if (line == "data: [DONE]")
            {
                done = true;
                break;
            }

            using var chunk = JsonDocument.Parse(line["data: ".Length..]);
            Assert.False(chunk.RootElement.TryGetProperty("error", out var error), error.ToString());
            if (chunk.RootElement.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0
                && choices[0].TryGetProperty("finish_reason", out var reason) && reason.ValueKind == JsonValueKind.String)
            {
                finish = reason.GetString();
            }

            if (chunk.RootElement.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object)
            {
                usage = u.Clone();
            }
        }

        Assert.True(done, "the stream ends with [DONE]");
        Assert.NotNull(usage);
        return new StreamResult(
            response.Headers.GetValues("x-gpufleet-worker").Single(),
            finish,
            usage.Value.GetProperty("prompt_tokens").GetInt32(),
            usage.Value.GetProperty("completion_tokens").GetInt32(),
            usage.Value.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    private sealed record StreamResult(string Worker, string? FinishReason, int PromptTokens, int CompletionTokens, int CachedTokens);
}
