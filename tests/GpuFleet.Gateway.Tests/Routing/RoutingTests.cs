using System.Net;
using System.Text;
using System.Text.Json;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Testing;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Routing;

/// <summary>
/// Three real workers on the tiny model behind a real gateway: affinity, the hot-spot guard and bad input. The fleet is
/// started once for the class (<see cref="Fleet"/>): each test uses conversations of its own, counts what it
/// checks from its own start, and leaves every worker idle.
/// </summary>
public sealed class RoutingTests(RoutingTests.Fleet fleet) : IClassFixture<RoutingTests.Fleet>
{
    private const string Model = "tiny-qwen3";
    private readonly IReadOnlyList<WorkerProcess> _workers = fleet.Workers;
    private readonly GatewayProcess _gateway = fleet.Gateway;

    [Fact]
    public async Task The_next_turn_of_a_long_conversation_lands_on_the_worker_that_holds_it_and_reuses_its_cache()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        var conversation = Conversation("turn-test");

        var first = await ChatAsync(http, conversation);
        conversation.Add(new { role = "assistant", content = first.Text });
        conversation.Add(new { role = "user", content = "And the next step?" });
        var second = await ChatAsync(http, conversation);

        Assert.Equal(first.Worker, second.Worker);
        Assert.Equal("affinity", second.Route);
        Assert.True(second.CachedTokens > 200, $"cached {second.CachedTokens} of {second.PromptTokens}");
    }

    [Fact]
    public async Task Gateway_and_workers_export_their_metrics_in_a_form_promtool_accepts()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        // The gateway is shared with the class's other tests: what this request adds is counted from here.
        var before = await http.ScrapeAsync(new Uri(_gateway.BaseAddress, "/metrics"));
        var first = await ChatAsync(http, Conversation("metrics-test"));
        var served = _workers.Single(w => Name(w) == first.Worker);
        var destination = served.BaseAddress.Authority;

        var gatewayText = await http.GetStringAsync(new Uri(_gateway.BaseAddress, "/metrics"));
        var workerText = await http.GetStringAsync(new Uri(served.BaseAddress, "/metrics"));
        var gateway = PrometheusSamples.Parse(gatewayText);
        double Added(string name, params (string Label, string Value)[] labels) => gateway.Single(name, labels) - before.Sum(name, labels);

        Assert.Equal(1, Added("gpufleet_gateway_requests_total", ("worker", destination), ("status", "2xx")));
        Assert.Equal(first.PromptTokens, Added("gpufleet_gateway_tokens_total", ("worker", destination), ("kind", "prompt")));
        Assert.Equal(1, Added("gpufleet_gateway_affinity_lookup_seconds_count"));
        Assert.Equal(1, Added("gpufleet_gateway_affinity_lookup_seconds_bucket", ("le", "+Inf")));
        Assert.Equal(0, gateway.Single("gpufleet_gateway_redis_degraded"));
        Assert.All(_workers, w => Assert.Equal(1, gateway.Single("gpufleet_gateway_worker_available", ("worker", w.BaseAddress.Authority))));
        Assert.Contains(gateway, m => m.Name == "http_client_request_duration_seconds_count");
        foreach (var text in new[] { gatewayText, workerText })
        {
            var (exitCode, output) = await Promtool.CheckMetricsAsync(text);
            Assert.True(exitCode == 0, output);
        }
    }

    [Fact]
    public async Task A_worker_kept_busy_is_avoided_even_when_it_holds_the_prefix()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        var conversation = Conversation("busy-test");
        var first = await ChatAsync(http, conversation);
        var holder = _workers.Single(w => Name(w) == first.Worker);

        // Two running and two queued long streams, sent straight to the holder: twice its slots. (A queued
        // stream gets its headers only with its first token, so these are not awaited; cancelling ends them.)
        using var stop = new CancellationTokenSource();
        var busy = Enumerable.Range(0, 4).Select(i => http.PostAsync(new Uri(holder.BaseAddress, "/v1/chat/completions"),
            Json(new { model = Model, stream = true, max_tokens = 6000, ignore_eos = true, messages = new[] { new { role = "user", content = $"busy {i}" } } }),
            stop.Token)).ToList();
        try
        {
            await TestTimeouts.WaitUntilAsync(async () => (await http.GetStringAsync(new Uri(_gateway.BaseAddress, "/workers"))).Contains("\"queue_depth\":2", StringComparison.Ordinal));
            conversation.Add(new { role = "assistant", content = first.Text });
            conversation.Add(new { role = "user", content = "Continue." });
            var second = await ChatAsync(http, conversation);

            Assert.NotEqual(first.Worker, second.Worker);
            Assert.Equal("load", second.Route);
        }
        finally
        {
            await stop.CancelAsync();
            foreach (var task in busy)
            {
                try
                {
                    (await task).Dispose();
                }
                catch (OperationCanceledException)
                {
                    // Cancelled as intended.
                }
            }

            // The fleet is shared: the next test finds every worker idle again.
            await fleet.WaitUntilIdleAsync(http);
        }
    }

    [Theory]
    [InlineData("{not json", "invalid_json")]
    [InlineData("[1,2]", "invalid_type")]
    [InlineData("""{"model":"tiny-qwen3","messages":[]}""", "invalid_value")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}]}""", "missing_required_parameter")]
    [InlineData("""{"model":"tiny-qwen3","stream":"yes","messages":[{"role":"user","content":"x"}]}""", "invalid_type")]
    public async Task Bad_input_is_answered_by_the_gateway_and_reaches_no_worker(string body, string code)
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        var before = await CompletedOnWorkersAsync(http);
        using var response = await http.PostAsync(new Uri(_gateway.BaseAddress, "/v1/chat/completions"), new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(response.Headers.Contains("x-gpufleet-worker"));
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(code, error.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(before, await CompletedOnWorkersAsync(http));
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413_from_the_gateway()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        var huge = new string('x', 17 * 1024 * 1024);
        using var response = await http.PostAsync(new Uri(_gateway.BaseAddress, "/v1/chat/completions"),
            new StringContent($$"""{"model":"tiny-qwen3","messages":[{"role":"user","content":"{{huge}}"}]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("request_too_large", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private string Name(WorkerProcess worker) => fleet.NameOf(worker);

    private async Task<long> CompletedOnWorkersAsync(HttpClient http)
    {
        long total = 0;
        foreach (var worker in _workers)
        {
            total += (long)(await http.ScrapeAsync(new Uri(worker.BaseAddress, "/metrics"))).Sum("gpufleet_worker_requests_total");
        }

        return total;
    }

    /// <summary>A conversation with a long system prompt (several prefix blocks), unique per test.</summary>
    internal static List<object> Conversation(string tag)
    {
        var system = new StringBuilder($"You are the assistant of test {tag}. ");
        for (var i = 0; system.Length < 4000; i++)
        {
            system.Append(System.Globalization.CultureInfo.InvariantCulture, $"Rule {i}: answer briefly and cite the file you read. ");
        }

        return [new { role = "system", content = system.ToString() }, new { role = "user", content = "Read the project and plan the change." }];
    }

    internal async Task<ChatResult> ChatAsync(HttpClient http, List<object> messages) => await ChatAsync(http, _gateway.BaseAddress, messages);

    internal static async Task<ChatResult> ChatAsync(HttpClient http, Uri gateway, List<object> messages, string model = Model)
    {
        using var response = await http.PostAsync(new Uri(gateway, "/v1/chat/completions"), Json(new { model, max_tokens = 8, messages }));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        using var json = JsonDocument.Parse(text);
        var usage = json.RootElement.GetProperty("usage");
        return new ChatResult(
            response.Headers.GetValues("x-gpufleet-worker").Single(),
            response.Headers.GetValues("x-gpufleet-route").Single(),
            json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString() ?? string.Empty,
            usage.GetProperty("prompt_tokens").GetInt32(),
            usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
    }

    internal static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    internal sealed record ChatResult(string Worker, string Route, string Text, int PromptTokens, int CachedTokens);

    /// <summary>Three workers on the tiny qwen3 model, two slots each.</summary>
    public sealed class Fleet() : GatewayFleet(RoutingTests.Model, DemoArchitecture.Qwen3, 3, "--slots", "2", "--ctx-size", "8192", "--enable-thinking", "false");
}
