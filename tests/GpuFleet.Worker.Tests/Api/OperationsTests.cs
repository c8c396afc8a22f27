using System.Net;
using System.Text;
using System.Text.Json;
using GpuFleet.Testing;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>Drain on SIGTERM, overload and disconnects, each on its own real worker process.</summary>
[Collection(LlamaCollection.Name)]
public sealed class OperationsTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    [Fact]
    public async Task Sigterm_during_a_stream_lets_it_finish_refuses_new_work_and_exits_zero()
    {
        // A grace far longer than the stream on any machine: this test is about a drain that completes.
        await using var worker = await WorkerProcess.StartAsync(fixture.ModelPath, "--slots", "2", "--ctx-size", "4096", "--drain-timeout", "600");
        using var http = new HttpClient { BaseAddress = worker.BaseAddress, Timeout = TestTimeouts.Default };
        using var request = StreamRequest(fixture.ModelId, maxTokens: 3000);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);

        worker.Terminate();
        await TestTimeouts.WaitUntilAsync(async () => (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).StatusCode == HttpStatusCode.ServiceUnavailable);
        using var refused = await http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), Json(new { model = fixture.ModelId, messages = new[] { new { role = "user", content = "late" } } }));
        var rest = await reader.ReadToEndAsync();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Contains("draining", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Contains("\"finish_reason\":\"length\"", rest, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]", rest.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(0, await worker.WaitForExitAsync());
    }

    [Fact]
    public async Task A_stream_still_running_when_the_drain_grace_ends_gets_an_error_event_and_the_worker_exits_zero()
    {
        await using var worker = await WorkerProcess.StartAsync(fixture.ModelPath, "--slots", "1", "--ctx-size", "16384", "--drain-timeout", "1");
        using var http = new HttpClient { BaseAddress = worker.BaseAddress, Timeout = TestTimeouts.Default };
        using var request = StreamRequest(fixture.ModelId, maxTokens: 16000);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);

        worker.Terminate();
        var rest = await reader.ReadToEndAsync().WithTimeout();

        Assert.Contains("\"code\":\"worker_stopped\"", rest, StringComparison.Ordinal);
        Assert.DoesNotContain("\"finish_reason\":\"", rest, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]", rest.TrimEnd(), StringComparison.Ordinal);
        Assert.Equal(0, await worker.WaitForExitAsync());
    }

    [Fact]
    public async Task A_full_worker_answers_429_with_retry_after_at_once()
    {
        await using var worker = await WorkerProcess.StartAsync(fixture.ModelPath, "--slots", "1", "--queue", "0", "--ctx-size", "4096");
        using var http = new HttpClient { BaseAddress = worker.BaseAddress, Timeout = TestTimeouts.Default };
        using var busy = StreamRequest(fixture.ModelId, maxTokens: 3000);
        using var running = await http.SendAsync(busy, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await running.Content.ReadAsStreamAsync());
        await reader.ReadLineAsync();

        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var refused = await http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), Json(new { model = fixture.ModelId, messages = new[] { new { role = "user", content = "one more" } } }));

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(clock.ElapsedMilliseconds < 2000, $"{clock.ElapsedMilliseconds} ms");
        Assert.InRange(refused.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0, 1, 60);
        using var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        Assert.Equal("rate_limit_exceeded", error.RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_client_that_disconnects_frees_its_slot()
    {
        await using var worker = await WorkerProcess.StartAsync(fixture.ModelPath, "--slots", "1", "--queue", "0", "--ctx-size", "4096");
        using (var http = new HttpClient { BaseAddress = worker.BaseAddress })
        {
            using var request = StreamRequest(fixture.ModelId, maxTokens: 3000);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            // The role chunk is written before the engine admits the request; wait for a generated token.
            while (await reader.ReadLineAsync() is { } line && !line.Contains("\"content\"", StringComparison.Ordinal))
            {
            }
        }

        using var probe = new HttpClient { BaseAddress = worker.BaseAddress, Timeout = TestTimeouts.Default };
        await TestTimeouts.WaitUntilAsync(async () => (await probe.ScrapeAsync(new Uri("/metrics", UriKind.Relative))).Single("gpufleet_worker_slots", ("state", "free")) == 1);
        using var next = await probe.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), Json(new { model = fixture.ModelId, max_tokens = 2, messages = new[] { new { role = "user", content = "next" } } }));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    private static HttpRequestMessage StreamRequest(string model, int maxTokens) => new(HttpMethod.Post, new Uri("/v1/chat/completions", UriKind.Relative))
    {
        Content = Json(new { model, stream = true, max_tokens = maxTokens, ignore_eos = true, messages = new[] { new { role = "user", content = "Talk for a long time." } } }),
    };

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
}
