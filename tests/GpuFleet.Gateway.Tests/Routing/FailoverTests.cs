using System.Net;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Routing;

/// <summary>Workers and Redis dying under a real gateway: retries before the first byte, error events after it, no client errors when Redis goes.</summary>
public sealed class FailoverTests : IAsyncLifetime
{
    private const string Model = "tiny-qwen3";
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-failover-").FullName;
    private readonly List<WorkerProcess> _workers = [];
    private string _model = string.Empty;

    public Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        _model = Path.Combine(_directory, Model + ".gguf");
        DemoModelBuilder.Build(new DemoModelOptions(_model, DemoArchitecture.Qwen3, DemoModelSize.Tiny));
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Killing_a_worker_moves_new_requests_elsewhere_and_ends_its_cut_stream_with_an_error_event()
    {
        await StartWorkersAsync(2);
        await using var gateway = await GatewayProcess.StartAsync(WorkerArgs());
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 2);

        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway.BaseAddress, "/v1/chat/completions"))
        {
            Content = RoutingTests.Json(new { model = Model, stream = true, max_tokens = 6000, ignore_eos = true, messages = new[] { new { role = "user", content = "A long answer, please." } } }),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var victim = _workers.Single(w => $"w{_workers.IndexOf(w)}" == response.Headers.GetValues("x-gpufleet-worker").Single());
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync(), StringComparison.Ordinal);

        victim.Kill();
        var rest = await reader.ReadToEndAsync().WithTimeout();
        Assert.Contains("\"code\":\"worker_disconnected\"", rest, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]", rest.TrimEnd(), StringComparison.Ordinal);

        // Until the gateway notices, requests may still be routed to the dead worker: they are retried, never failed.
        for (var i = 0; i < 8; i++)
        {
            var result = await RoutingTests.ChatAsync(http, gateway.BaseAddress, RoutingTests.Conversation($"after-kill-{i}"));
            Assert.NotEqual($"w{_workers.IndexOf(victim)}", result.Worker);
        }
    }

    [Fact]
    public async Task Killing_redis_mid_run_costs_no_client_errors_and_is_reported_as_degraded()
    {
        await StartWorkersAsync(2);
        await using var redis = await RedisServerProcess.StartAsync();
        await using var gateway = await GatewayProcess.StartAsync([.. WorkerArgs(), "--redis", redis.Endpoint]);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 2);

        var conversation = RoutingTests.Conversation("redis-outage");
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 12; i++)
        {
            if (i == 4)
            {
                redis.Kill();
            }

            using var response = await http.PostAsync(new Uri(gateway.BaseAddress, "/v1/chat/completions"),
                RoutingTests.Json(new { model = Model, max_tokens = 4, messages = conversation }));
            statuses.Add(response.StatusCode);
        }

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(1, (await http.ScrapeAsync(new Uri(gateway.BaseAddress, "/metrics"))).Single("gpufleet_gateway_redis_degraded"));
    }

    [Fact]
    public async Task A_gateway_and_a_worker_started_while_redis_is_down_serve_at_once_and_connect_when_it_comes_up()
    {
        await using var redis = RedisServerProcess.NotStarted();
        // Redis's port takes connections and never answers (a Redis that hangs, or a partition): every connect attempt
        // then lasts the whole 20 s connect timeout, however loaded the machine. (A closed port would refuse at once,
        // ending the first attempt, and logging its end, before the first request whether or not the gateway waited.)
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, redis.Port);
        silent.Start();
        _workers.Add(await WorkerProcess.StartAsync(_model, "--name", "w0", "--slots", "2", "--ctx-size", "8192", "--enable-thinking", "false", "--redis", redis.Endpoint));
        // A 20 s connect timeout: a gateway whose start or first request waited for the first connect attempt would
        // take that long, and would have logged the attempt's end ("Redis unavailable", RedisDisconnected) before answering.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var gateway = await GatewayProcess.StartAsync([.. WorkerArgs(), "--redis", redis.Endpoint + ",connectTimeout=20000"]);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 1);
        var answer = await RoutingTests.ChatAsync(http, gateway.BaseAddress, RoutingTests.Conversation("redis-down-at-start"));
        Assert.Equal("w0", answer.Worker);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the gateway served its first request after {clock.Elapsed}");
        Assert.DoesNotContain("Redis unavailable", gateway.Output, StringComparison.Ordinal);
        Assert.Equal(1, (await http.ScrapeAsync(new Uri(gateway.BaseAddress, "/metrics"))).Single("gpufleet_gateway_redis_degraded"));

        // Redis comes up: the gateway connects by itself and the worker announces itself in the registry.
        silent.Stop();
        await redis.StartAgainAsync();
        await TestTimeouts.WaitUntilAsync(async () => (await http.ScrapeAsync(new Uri(gateway.BaseAddress, "/metrics"))).Single("gpufleet_gateway_redis_degraded") == 0);
        await using var admin = await GpuFleet.Gateway.Tests.State.RedisTestConnections.AdminAsync(redis.Endpoint);
        await TestTimeouts.WaitUntilAsync(async () => (long)await admin.GetDatabase().SortedSetLengthAsync("gpufleet:{workers}") == 1);
        Assert.Equal("w0", (await RoutingTests.ChatAsync(http, gateway.BaseAddress, RoutingTests.Conversation("redis-up-later"))).Worker);
    }

    [Fact]
    public async Task Two_gateways_sharing_one_redis_send_a_prefix_to_the_same_worker()
    {
        await StartWorkersAsync(3);
        await using var redis = await RedisServerProcess.StartAsync();
        var key = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        string[] shared = [.. WorkerArgs(), "--redis", redis.Endpoint, "--affinity-key", key];
        await using var first = await GatewayProcess.StartAsync(shared);
        await using var second = await GatewayProcess.StartAsync(shared);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await first.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 3);
        await second.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 3);

        for (var i = 0; i < 3; i++)
        {
            var conversation = RoutingTests.Conversation($"two-gateways-{i}");
            var viaFirst = await RoutingTests.ChatAsync(http, first.BaseAddress, conversation);
            var viaSecond = await RoutingTests.ChatAsync(http, second.BaseAddress, conversation);

            Assert.Equal(viaFirst.Worker, viaSecond.Worker);
            Assert.Equal("affinity", viaSecond.Route);
        }
    }

    [Fact]
    public async Task When_every_worker_is_full_a_request_waits_a_bounded_time_then_gets_429_with_retry_after()
    {
        _workers.Add(await WorkerProcess.StartAsync(_model, "--name", "w0", "--slots", "1", "--queue", "0", "--ctx-size", "8192", "--enable-thinking", "false"));
        await using var gateway = await GatewayProcess.StartAsync(WorkerArgs());
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 1);

        using var stop = new CancellationTokenSource();
        var busy = http.PostAsync(new Uri(_workers[0].BaseAddress, "/v1/chat/completions"),
            RoutingTests.Json(new { model = Model, stream = true, max_tokens = 7000, ignore_eos = true, messages = new[] { new { role = "user", content = "busy" } } }), stop.Token);
        await TestTimeouts.WaitUntilAsync(async () => (await http.GetStringAsync(new Uri(gateway.BaseAddress, "/workers"))).Contains("\"running_slots\":1", StringComparison.Ordinal));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var refused = await http.PostAsync(new Uri(gateway.BaseAddress, "/v1/chat/completions"),
            RoutingTests.Json(new { model = Model, max_tokens = 2, messages = new[] { new { role = "user", content = "one more" } } }));
        var waited = clock.Elapsed;

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("fleet_overloaded", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.InRange(refused.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0, 1, 60);
        Assert.InRange(waited.TotalSeconds, 4, 30); // the default bounded wait is 5 s
        await stop.CancelAsync();
        try
        {
            (await busy).Dispose();
        }
        catch (OperationCanceledException)
        {
            // Cancelled as intended.
        }
    }

    [Fact]
    public async Task When_the_measured_wait_for_a_slot_exceeds_the_bounded_wait_a_request_is_refused_at_once_with_that_retry_after()
    {
        // One slot, no queue, answers of 6 s (60 tokens 100 ms apart): the gateway measures the duration on a first request.
        _workers.Add(await WorkerProcess.StartAsync(_model, "--name", "w0", "--simulate", "--simulate-tokens", "60", "--simulate-token-ms", "100",
            "--slots", "1", "--queue", "0", "--ctx-size", "4096", "--enable-thinking", "false"));
        await using var gateway = await GatewayProcess.StartAsync(WorkerArgs());
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 1);
        var chat = new Uri(gateway.BaseAddress, "/v1/chat/completions");
        using (var first = await http.PostAsync(chat, RoutingTests.Json(new { model = Model, max_tokens = 100, messages = new[] { new { role = "user", content = "first" } } })))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        var busy = http.PostAsync(chat, RoutingTests.Json(new { model = Model, max_tokens = 100, messages = new[] { new { role = "user", content = "busy" } } }));
        await TestTimeouts.WaitUntilAsync(async () => (await http.GetStringAsync(new Uri(gateway.BaseAddress, "/workers"))).Contains("\"running_slots\":1", StringComparison.Ordinal));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var refused = await http.PostAsync(chat, RoutingTests.Json(new { model = Model, max_tokens = 2, messages = new[] { new { role = "user", content = "one more" } } }));
        var waited = clock.Elapsed;

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("fleet_overloaded", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // A slot frees in about one answer's time (6 s, longer on a loaded machine), more than the 5 s the request could
        // wait: refused at once, told when.
        Assert.InRange(refused.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0, 6, 60);
        Assert.True(waited < TimeSpan.FromSeconds(3), $"the refusal took {waited}");
        (await busy).Dispose();
    }

    private async Task StartWorkersAsync(int count) =>
        _workers.AddRange(await Task.WhenAll(Enumerable.Range(0, count).Select(i =>
            WorkerProcess.StartAsync(_model, "--name", $"w{i}", "--slots", "2", "--ctx-size", "8192", "--enable-thinking", "false"))));

    private string[] WorkerArgs() => [.. _workers.SelectMany(w => new[] { "--worker", w.BaseAddress.ToString().TrimEnd('/') })];

    public async Task DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            await worker.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }
}
