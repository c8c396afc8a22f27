using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using GpuFleet.Testing;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>A real worker process on the cost-model engine (<c>--simulate-profile</c>): real scheduler, simulated everywhere it shows.</summary>
[Collection(LlamaCollection.Name)]
public sealed class CostModelWorkerTests(TestModels models) : IAsyncLifetime
{
    private const string ModelId = "tiny-qwen35";
    private WorkerProcess _worker = null!;

    public async Task InitializeAsync() =>
        _worker = await WorkerProcess.StartAsync(models.PathOf(DemoArchitecture.Qwen35), "--simulate-profile", "rtx3090-qwen36-27b-q4km",
            "--simulate-speedup", "100", "--simulate-tokens", "6", "--slots", "2", "--name", "costed",
            // Modelled bytes, not allocated: room for the snapshots of this tokenizer's long prompts (~70 KB of KV per token).
            "--host-cache-bytes", (16L << 30).ToString(CultureInfo.InvariantCulture));

    public async Task DisposeAsync() => await _worker.DisposeAsync();

    [Fact]
    public async Task Answers_through_the_scheduler_and_every_surface_says_simulated()
    {
        using var http = new HttpClient { BaseAddress = _worker.BaseAddress, Timeout = TestTimeouts.Default };
        var body = JsonSerializer.Serialize(new { model = ModelId, messages = new[] { new { role = "user", content = "Hello, modelled card" } } });

        using var response = await http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        using var modelList = JsonDocument.Parse(await http.GetStringAsync(new Uri("/v1/models", UriKind.Relative)));
        var status = GpuFleet.Contracts.V1.WorkerStatus.Parser.ParseJson(await http.GetStringAsync(new Uri("/status", UriKind.Relative)));
        var metrics = await http.ScrapeAsync(new Uri("/metrics", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("true", response.Headers.GetValues("x-gpufleet-simulated").Single());
        // Six text tokens, then end-of-generation, which the scheduler counts as it counts a real model's.
        Assert.Equal(7, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("stop", json.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("gpufleet-simulated", modelList.RootElement.GetProperty("data")[0].GetProperty("owned_by").GetString());
        Assert.True(status.Simulated);
        // The scheduler's own figures, which the zero-cost engine leaves at 0: the profile's KV pool, prefilled tokens.
        Assert.Equal(65_536ul, status.Engine.KvTokensTotal);
        Assert.True(status.Engine.PromptTokensTotal > 0);
        Assert.Equal(1, metrics.Single("gpufleet_worker_simulated"));
        Assert.Matches("(?m)warn: .*SIMULATED: the scheduler runs over the cost model 'rtx3090-qwen36-27b-q4km' at 100x", _worker.Output);
    }

    [Fact]
    public async Task A_conversation_with_the_same_tools_and_another_system_prompt_reuses_the_tools()
    {
        // Agents of one team declare the same tools, while their system prompts differ (per-repository instructions).
        using var http = new HttpClient { BaseAddress = _worker.BaseAddress, Timeout = TestTimeouts.Default };
        async Task<(int Prompt, int Cached)> SendAsync(string system, string task)
        {
            var body = AgentWorkload.FirstRequest(ModelId, task, AgentWorkload.SystemPrompt(2_000, system), maxTokens: 4);
            body["stream"] = false;
            body.Remove("stream_options");
            using var response = await http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var usage = json.RootElement.GetProperty("usage");
            return (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        }

        var first = await SendAsync("coder-payments", "Fix the failing build.");
        var second = await SendAsync("coder-billing", "Add a test for invoices.");

        Assert.Equal(0, first.Cached);
        // The ten tool schemas (~24 KB) come before the system prompt: they are restored, the system prompt is not.
        Assert.True(second.Cached is >= 4_000 && second.Cached <= second.Prompt - 500, $"{first} {second} " + await http.GetStringAsync(new Uri("/status", UriKind.Relative)));
    }

    [Fact]
    public async Task An_unknown_profile_is_refused_at_start_with_the_known_names()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => WorkerProcess.StartAsync(models.PathOf(DemoArchitecture.Qwen35), "--simulate-profile", "h100"));

        Assert.Contains("Worker:SimulateProfile must be one of rtx3090-qwen36-27b-q4km, instant, not 'h100'", error.Message, StringComparison.Ordinal);
    }
}
