using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Gateway.Tests.Routing;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Forwarding;

/// <summary>
/// A bad day for a real gateway in front of real (simulated-engine) workers: workers killed and restarted under
/// streaming load, overload at three times the fleet's capacity, and a client that never reads its stream.
/// </summary>
public sealed class ChaosTests : IAsyncLifetime
{
    private const string Model = "tiny-qwen3";
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-chaos-").FullName;
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
    public async Task Killing_workers_again_and_again_under_streaming_load_fails_no_request_that_had_not_started_and_ends_every_cut_stream_with_an_error()
    {
        // Streams of 40 tokens 25 ms apart (1 s each) on 2 slots per worker for 32 clients: a kill always finds streams
        // running and about ten requests queued (more than the retry budget would let through).
        string[] simulated = ["--simulate", "--simulate-tokens", "40", "--simulate-token-ms", "25", "--slots", "2", "--queue", "64", "--ctx-size", "4096", "--enable-thinking", "false"];
        var ports = Enumerable.Range(0, 3).Select(_ => (Http: FreePort.Next(), Grpc: FreePort.Next())).ToArray();
        var workers = await Task.WhenAll(ports.Select((p, i) => WorkerProcess.StartOnPortsAsync(_model, p.Http, p.Grpc, [.. simulated, "--name", $"w{i}"])));
        _workers.AddRange(workers);
        await using var gateway = await GatewayProcess.StartAsync([.. ports.SelectMany(p => new[] { "--worker", $"http://127.0.0.1:{p.Http}" })]);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue }) { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 3);

        var results = new ConcurrentBag<StreamResult>();
        var clock = Stopwatch.StartNew();
        var load = TimeSpan.FromSeconds(40);
        var clients = Enumerable.Range(0, 32).Select(async client =>
        {
            for (var i = 0; clock.Elapsed < load; i++)
            {
                results.Add(await StreamAsync(http, gateway.BaseAddress, $"client {client} request {i}"));
            }
        }).ToList();

        // A worker killed every 10 s, in turn, and started again on its ports 1 s later (a crash and a restart).
        var kills = 0;
        for (var at = TimeSpan.FromSeconds(4); at < load - TimeSpan.FromSeconds(2); at += TimeSpan.FromSeconds(10))
        {
            if (at - clock.Elapsed is { Ticks: > 0 } wait)
            {
                await Task.Delay(wait); // a slow restart may already have taken us past it
            }

            var victim = kills % 3;
            workers[victim].Kill();
            kills++;
            await Task.Delay(TimeSpan.FromSeconds(1));
            workers[victim] = await WorkerProcess.StartOnPortsAsync(_model, ports[victim].Http, ports[victim].Grpc, [.. simulated, "--name", $"w{victim}"]);
            _workers.Add(workers[victim]);
            // One worker down at a time: on a loaded machine a restart can outlast the 10 s between kills, and with two of
            // three down a request may find both dead within its retry budget (a 503 by design, not what this test is about).
            await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 3);
        }

        await Task.WhenAll(clients).WithTimeout();
        var all = results.ToList();
        var notStarted = all.Where(r => !r.Started).ToList();
        var failedBeforeStart = notStarted.Where(r => !r.Completed).ToList();
        var cut = all.Where(r => r.Started && !r.Completed).ToList();
        var retries = (await http.ScrapeAsync(new Uri(gateway.BaseAddress, "/metrics"))).Sum("gpufleet_gateway_retries_total");

        Assert.True(kills >= 4, $"only {kills} kills");
        // The kills really hit work in flight: streams were cut, or queued requests were re-placed.
        Assert.True(cut.Count + retries > 0, "no kill hit a request: the test proved nothing");
        // >= 99.9 % of the requests that had not started streaming succeed elsewhere (here: every one of them).
        Assert.True(failedBeforeStart.Count <= notStarted.Count / 1000,
            $"{failedBeforeStart.Count} of {notStarted.Count} requests failed before their first byte: {string.Join("; ", failedBeforeStart.Take(3).Select(r => r.Error))}\n{gateway.Output}");
        // Every cut stream ends with an OpenAI error event and [DONE], never a clean-looking end.
        Assert.All(cut, r => Assert.True(r.ErrorEvent && r.Done, $"a cut stream ended without an error event and [DONE]: {r.Error}"));
        Assert.True(all.Count(r => r.Completed) > 100, $"only {all.Count(r => r.Completed)} requests completed");
    }

    [Fact]
    public async Task With_every_worker_down_clients_get_a_quick_503_with_retry_after_and_are_served_again_when_one_returns()
    {
        string[] simulated = ["--simulate", "--slots", "2", "--ctx-size", "4096", "--enable-thinking", "false"];
        var ports = Enumerable.Range(0, 2).Select(_ => (Http: FreePort.Next(), Grpc: FreePort.Next())).ToArray();
        var workers = await Task.WhenAll(ports.Select((p, i) => WorkerProcess.StartOnPortsAsync(_model, p.Http, p.Grpc, [.. simulated, "--name", $"w{i}"])));
        _workers.AddRange(workers);
        await using var gateway = await GatewayProcess.StartAsync([.. ports.SelectMany(p => new[] { "--worker", $"http://127.0.0.1:{p.Http}" })]);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 2);

        foreach (var worker in workers)
        {
            worker.Kill();
        }

        // Right after the kills (the gateway still counts them) and after it noticed: a 503 at once, never a hang or a 502.
        for (var i = 0; i < 8; i++)
        {
            var clock = Stopwatch.StartNew();
            using var response = await http.PostAsync(new Uri(gateway.BaseAddress, "/v1/chat/completions"),
                RoutingTests.Json(new { model = Model, max_tokens = 2, messages = new[] { new { role = "user", content = $"anyone there {i}" } } }));
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)response.StatusCode}: {text}");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"the 503 took {clock.Elapsed}");
            Assert.InRange(response.Headers.RetryAfter?.Delta?.TotalSeconds ?? 0, 1, 60);
            Assert.Contains("\"type\":\"service_unavailable\"", text, StringComparison.Ordinal);
            await Task.Delay(250);
        }

        _workers.Add(await WorkerProcess.StartOnPortsAsync(_model, ports[0].Http, ports[0].Grpc, [.. simulated, "--name", "w0"]));
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 1);
        Assert.Equal("w0", (await RoutingTests.ChatAsync(http, gateway.BaseAddress, RoutingTests.Conversation("after-the-outage"))).Worker);
    }

    [Fact]
    public async Task At_three_times_the_fleets_capacity_no_request_gets_a_5xx_and_a_client_waiting_the_advised_retry_after_gets_served()
    {
        // Two workers of 2 slots and a queue of 2, requests of 0.5 s: 8 requests fit in the fleet at once.
        string[] simulated = ["--simulate", "--simulate-tokens", "20", "--simulate-token-ms", "25", "--slots", "2", "--queue", "2", "--ctx-size", "4096", "--enable-thinking", "false"];
        _workers.AddRange(await Task.WhenAll(Enumerable.Range(0, 2).Select(i => WorkerProcess.StartAsync(_model, [.. simulated, "--name", $"w{i}"]))));
        await using var gateway = await GatewayProcess.StartAsync([.. _workers.SelectMany(w => new[] { "--worker", w.BaseAddress.ToString().TrimEnd('/') })]);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue }) { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 2);

        var statuses = new ConcurrentBag<HttpStatusCode>();
        var advised = new ConcurrentBag<double?>();
        var served = new int[24];
        var clock = Stopwatch.StartNew();
        var clients = Enumerable.Range(0, served.Length).Select(async client =>
        {
            // Each client sends until it was served twice, waiting exactly what every refusal advises.
            while (served[client] < 2 && clock.Elapsed < TimeSpan.FromSeconds(45))
            {
                using var response = await http.PostAsync(new Uri(gateway.BaseAddress, "/v1/chat/completions"),
                    RoutingTests.Json(new { model = Model, max_tokens = 20, messages = new[] { new { role = "user", content = $"client {client}" } } }));
                statuses.Add(response.StatusCode);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    served[client]++;
                    continue;
                }

                var retryAfter = response.Headers.RetryAfter?.Delta?.TotalSeconds;
                advised.Add(retryAfter);
                await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(retryAfter ?? 1, 0, 60)));
            }
        }).ToList();
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(90));

        var byStatus = statuses.GroupBy(s => s).ToDictionary(g => (int)g.Key, g => g.Count());
        var summary = string.Join(", ", byStatus.Select(kv => $"{kv.Key}: {kv.Value}"));
        Assert.True(byStatus.GetValueOrDefault(429) > 0, $"the fleet was never overloaded: {summary}");
        Assert.All(byStatus.Keys, status => Assert.True(status is 200 or 429, $"an answer other than 200 or 429 under overload: {summary}"));
        Assert.All(advised, seconds => Assert.InRange(seconds ?? 0, 1, 60));
        Assert.All(served, count => Assert.Equal(2, count));
    }

    [Fact]
    public async Task A_client_that_never_reads_a_long_stream_holds_no_memory_and_its_worker_slot_is_freed()
    {
        // The real scheduler on the instant cost model: tokens as fast as the CPU makes them, a context of a million.
        _workers.Add(await WorkerProcess.StartAsync(_model, "--simulate-profile", "instant", "--simulate-tokens", "10000000", "--slots", "2",
            "--ctx-size", "1000000", "--enable-thinking", "false", "--name", "w0"));
        var worker = _workers[0];
        await using var gateway = await GatewayProcess.StartAsync("--worker", worker.BaseAddress.ToString().TrimEnd('/'));
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 1);
        var (gatewayBefore, workerBefore) = (ResidentBytes(gateway.ProcessId), ResidentBytes(worker.ProcessId));

        // A raw connection asks for a stream of 900,000 tokens (about 180 MB of events) and never reads a byte.
        using var silent = new TcpClient();
        silent.ReceiveBufferSize = 64 * 1024;
        await silent.ConnectAsync(IPAddress.Loopback, gateway.BaseAddress.Port);
        var body = JsonSerializer.Serialize(new { model = Model, stream = true, max_tokens = 900_000, ignore_eos = true, messages = new[] { new { role = "user", content = "never read" } } });
        var request = $"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";
        await silent.GetStream().WriteAsync(Encoding.UTF8.GetBytes(request));

        // The worker fills every buffer on the way, then stops producing for the stalled reader: its tokens stall far below the answer's length.
        var metrics = new Uri(worker.BaseAddress, "/metrics");
        double generated = 0, previous = -1;
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            (previous, generated) = (generated, (await http.ScrapeAsync(metrics)).Sum("gpufleet_worker_generated_tokens_total"));
            await Task.Delay(500);
            return generated > 0 && generated == previous;
        });
        Assert.True(generated < 200_000, $"{generated} tokens were made for a client that reads nothing");

        // Meanwhile other requests are served by the same gateway and worker...
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("w0", (await RoutingTests.ChatAsync(http, gateway.BaseAddress, RoutingTests.Conversation($"beside-the-silent-client-{i}"))).Worker);
        }

        // ...neither process holds the answer (only socket and pipe buffers are in flight)...
        Assert.True(ResidentBytes(gateway.ProcessId) - gatewayBefore < 64L << 20, $"the gateway grew by {(ResidentBytes(gateway.ProcessId) - gatewayBefore) >> 20} MB");
        Assert.True(ResidentBytes(worker.ProcessId) - workerBefore < 64L << 20, $"the worker grew by {(ResidentBytes(worker.ProcessId) - workerBefore) >> 20} MB");
        // ...and the stalled connection is closed after Gateway:Forwarding:ClientStallTimeout (30 s), which ends the request and frees its slot.
        await TestTimeouts.WaitUntilAsync(async () =>
            (await http.GetStringAsync(new Uri(gateway.BaseAddress, "/workers"))).Contains("\"running_slots\":0", StringComparison.Ordinal));
    }

    /// <summary>One streaming request read to its end, classified: started (a first event came), completed, or cut.</summary>
    private static async Task<StreamResult> StreamAsync(HttpClient http, Uri gateway, string content)
    {
        var result = new StreamResult();
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway, "/v1/chat/completions"))
            {
                Content = RoutingTests.Json(new { model = Model, stream = true, max_tokens = 40, messages = new[] { new { role = "user", content } } }),
            };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var text = await response.Content.ReadAsStringAsync();
                result.Error = string.Create(CultureInfo.InvariantCulture, $"HTTP {(int)response.StatusCode}: {text}");
                return result;
            }

            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            var finished = false;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    continue;
                }

                result.Started = true;
                if (line == "data: [DONE]")
                {
                    result.Done = true;
                }
                else if (line.Contains("\"error\":", StringComparison.Ordinal))
                {
                    result.ErrorEvent = true;
                    result.Error = line;
                }
                else
                {
                    finished |= line.Contains("\"finish_reason\":\"", StringComparison.Ordinal);
                }
            }

            result.Completed = result.Done && finished && !result.ErrorEvent;
            result.Error ??= result.Completed ? null : "the stream ended early";
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            result.Error = $"{ex.GetType().Name}: {ex.Message}";
        }

        return result;
    }

    private static long ResidentBytes(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;

    public async Task DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            await worker.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    private sealed class StreamResult
    {
        public bool Started { get; set; }

        public bool Completed { get; set; }

        public bool Done { get; set; }

        public bool ErrorEvent { get; set; }

        public string? Error { get; set; }
    }
}
