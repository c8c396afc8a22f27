using System.Net;
using System.Text;
using System.Text.Json;
using GpuFleet.Testing;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>A real worker process started with <c>--simulate</c>: the API answers at once and says it is simulated everywhere.</summary>
[Collection(LlamaCollection.Name)]
public sealed class SimulatedWorkerTests(TestModels models) : IAsyncLifetime
{
    private const string ModelId = "tiny-qwen35";
    private WorkerProcess _worker = null!;

    private HttpClient Http => new() { BaseAddress = _worker.BaseAddress, Timeout = TestTimeouts.Default };

    public async Task InitializeAsync() =>
        // Thinking left at the model's default (on): the simulated answer closes the open <think> block itself.
        _worker = await WorkerProcess.StartAsync(models.PathOf(DemoArchitecture.Qwen35), "--simulate", "--slots", "4", "--ctx-size", "4096", "--name", "sim");

    public async Task DisposeAsync() => await _worker.DisposeAsync();

    [Fact]
    public async Task Chat_answers_with_fixed_content_real_usage_and_the_simulated_header()
    {
        using var http = Http;
        using var response = await PostAsync(http, "/v1/chat/completions", new { model = ModelId, messages = new[] { new { role = "user", content = "Hello, simulated worker" } } });
        using var again = await PostAsync(http, "/v1/chat/completions", new { model = ModelId, messages = new[] { new { role = "user", content = "Something else" } } });
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        using var json2 = JsonDocument.Parse(await again.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("true", response.Headers.GetValues("x-gpufleet-simulated").Single());
        var choice = json.RootElement.GetProperty("choices")[0];
        var content = choice.GetProperty("message").GetProperty("content").GetString();
        Assert.False(string.IsNullOrEmpty(content));
        Assert.StartsWith(content!, "This answer is simulated: GpuFleet measured everything except the model. ", StringComparison.Ordinal);
        Assert.False(choice.GetProperty("message").TryGetProperty("reasoning_content", out _));
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(content, json2.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var usage = json.RootElement.GetProperty("usage");
        Assert.Equal(16, usage.GetProperty("completion_tokens").GetInt32());
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 10);
        Assert.NotEqual(usage.GetProperty("prompt_tokens").GetInt32(), json2.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(0, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    [Fact]
    public async Task Streams_chunks_usage_and_done_and_text_completions_honour_max_tokens()
    {
        using var http = Http;
        using var stream = await PostAsync(http, "/v1/chat/completions", new
        {
            model = ModelId, stream = true, stream_options = new { include_usage = true }, messages = new[] { new { role = "user", content = "Stream please" } },
        });
        // Data events only: SSE comment lines are for proxies, and clients skip them.
        var events = (await stream.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Where(e => e.StartsWith("data: ", StringComparison.Ordinal)).ToArray();
        using var completion = await PostAsync(http, "/v1/completions", new { model = ModelId, prompt = "Once upon a time", max_tokens = 5 });
        using var completionJson = JsonDocument.Parse(await completion.Content.ReadAsStringAsync());

        Assert.Equal("true", stream.Headers.GetValues("x-gpufleet-simulated").Single());
        Assert.Equal("data: [DONE]", events[^1].Trim());
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();
        var text = string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0)
            .Select(c => c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
        Assert.StartsWith("This answer", text, StringComparison.Ordinal);
        Assert.Equal(16, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var choice = completionJson.RootElement.GetProperty("choices")[0];
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.StartsWith(choice.GetProperty("text").GetString()!, "This answer is simulated", StringComparison.Ordinal);
        Assert.Equal(5, completionJson.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("true", completion.Headers.GetValues("x-gpufleet-simulated").Single());
    }

    [Fact]
    public async Task Models_status_metrics_and_the_log_say_simulated()
    {
        using var http = Http;
        using var models = JsonDocument.Parse(await http.GetStringAsync(new Uri("/v1/models", UriKind.Relative)));
        using var modelResponse = await http.GetAsync(new Uri($"/v1/models/{ModelId}", UriKind.Relative));
        var status = GpuFleet.Contracts.V1.WorkerStatus.Parser.ParseJson(await http.GetStringAsync(new Uri("/status", UriKind.Relative)));
        var metrics = await http.ScrapeAsync(new Uri("/metrics", UriKind.Relative));

        Assert.Equal("gpufleet-simulated", models.RootElement.GetProperty("data")[0].GetProperty("owned_by").GetString());
        Assert.Equal("true", modelResponse.Headers.GetValues("x-gpufleet-simulated").Single());
        Assert.True(status.Simulated);
        Assert.True(status.Ready);
        Assert.Equal(4u, status.Engine.TotalSlots);
        Assert.Equal(1, metrics.Single("gpufleet_worker_simulated"));
        Assert.Contains("SIMULATED engine: answers are not generated by the model", _worker.Output, StringComparison.Ordinal);
        Assert.Matches("(?m)warn: .*SIMULATED engine", _worker.Output);
    }

    [Fact]
    public async Task Nothing_is_prefilled_or_decoded_and_no_context_is_created()
    {
        using var http = Http;
        for (var i = 0; i < 10; i++)
        {
            using var response = await PostAsync(http, "/v1/chat/completions", new { model = ModelId, messages = new[] { new { role = "user", content = $"Request {i}" } } });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var metrics = await http.ScrapeAsync(new Uri("/metrics", UriKind.Relative));

        Assert.True(metrics.Single("gpufleet_worker_generated_tokens_total") >= 10);
        Assert.Equal(0, metrics.Single("gpufleet_worker_decode_tokens_per_second"));
        Assert.Equal(0, metrics.Single("gpufleet_worker_prefill_tokens_per_second"));
        Assert.Equal(0, metrics.Single("gpufleet_worker_kv_bytes", ("kind", "total")));
        // The llama.cpp engine logs "Engine started" once its context exists; the simulated worker never makes one.
        Assert.DoesNotContain("Engine started", _worker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_full_simulated_worker_answers_429_a_disconnect_frees_the_slot_and_long_prompts_get_400()
    {
        // One second per token holds the only slot while the first stream runs; no queue.
        await using var paced = await WorkerProcess.StartAsync(models.PathOf(DemoArchitecture.Qwen35), "--simulate", "--simulate-token-ms", "1000",
            "--slots", "1", "--queue", "0", "--ctx-size", "256", "--enable-thinking", "false");
        using (var http = new HttpClient { BaseAddress = paced.BaseAddress })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/v1/chat/completions", UriKind.Relative))
            {
                Content = Json(new { model = ModelId, stream = true, messages = new[] { new { role = "user", content = "Hold the slot" } } }),
            };
            using var running = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await running.Content.ReadAsStreamAsync());
            await reader.ReadLineAsync();

            using var probe = new HttpClient { BaseAddress = paced.BaseAddress, Timeout = TestTimeouts.Default };
            await TestTimeouts.WaitUntilAsync(async () => (await probe.ScrapeAsync(new Uri("/metrics", UriKind.Relative))).Single("gpufleet_worker_slots", ("state", "running")) == 1);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var refused = await PostAsync(probe, "/v1/chat/completions", new { model = ModelId, messages = new[] { new { role = "user", content = "One more" } } });

            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.True(clock.ElapsedMilliseconds < 2000, $"{clock.ElapsedMilliseconds} ms");
            Assert.InRange(refused.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0, 1, 60);
            Assert.Equal("true", refused.Headers.GetValues("x-gpufleet-simulated").Single());
            Assert.Contains("worker_overloaded", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The first client went away mid-answer: its slot is free again.
        using var after = new HttpClient { BaseAddress = paced.BaseAddress, Timeout = TestTimeouts.Default };
        await TestTimeouts.WaitUntilAsync(async () => (await after.ScrapeAsync(new Uri("/metrics", UriKind.Relative))).Single("gpufleet_worker_slots", ("state", "free")) == 1);
        using var next = await PostAsync(after, "/v1/chat/completions", new { model = ModelId, max_tokens = 1, messages = new[] { new { role = "user", content = "next" } } });
        using var tooLong = await PostAsync(after, "/v1/chat/completions", new { model = ModelId, max_tokens = 1, messages = new[] { new { role = "user", content = new string('x', 400) } } });

        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.Contains("context_length_exceeded", await tooLong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, string path, object body) =>
        http.PostAsync(new Uri(path, UriKind.Relative), Json(body));

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
}
