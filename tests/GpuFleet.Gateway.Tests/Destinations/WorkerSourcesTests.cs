using System.Diagnostics;
using GpuFleet.Gateway.Tests.State;
using GpuFleet.Testing;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Destinations;

/// <summary>Workers found in the Redis registry, as real processes: announced, routed to, leaving on drain.</summary>
public sealed class RegistryWorkerSourceTests(TestModels models) : IClassFixture<TestModels>
{
    [Fact]
    public async Task Workers_announced_in_Redis_serve_requests_and_a_drained_one_leaves_within_seconds()
    {
        await using var redis = await RedisServerProcess.StartAsync();
        await using var workers = await WorkerSources.StartAsync(models, 2, "--redis", redis.Endpoint);
        var (w0, w1) = (workers[0], workers[1]);
        await using var gateway = await GatewayProcess.StartAsync("--redis", redis.Endpoint);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };

        var view = await gateway.WaitForWorkersAsync(http, v => v.Count(w => w.Available) == 2);
        Assert.Equal(
            new[] { $"127.0.0.1:{w0.HttpPort}", $"127.0.0.1:{w1.HttpPort}" }.Order(StringComparer.Ordinal),
            view.Select(w => w.Destination).Order(StringComparer.Ordinal));
        for (var i = 0; i < 4; i++)
        {
            Assert.Contains(await gateway.ChatAsync(http), new[] { "w0", "w1" });
        }

        // SIGTERM: the worker removes its entry at once, so it leaves long before its 10 s TTL would run out.
        var drained = Stopwatch.StartNew();
        w0.Terminate();
        await gateway.WaitForWorkersAsync(http, v => v.Select(w => w.Destination).SequenceEqual([$"127.0.0.1:{w1.HttpPort}"]));
        Assert.True(drained.Elapsed < TimeSpan.FromSeconds(7), $"the drained worker left after {drained.Elapsed}");
        Assert.Equal("w1", await gateway.ChatAsync(http));
    }
}

/// <summary>Workers found in DNS: <c>localhost</c> resolves to 127.0.0.1 (and often ::1), the worker binds 127.0.0.1.</summary>
public sealed class DnsWorkerSourceTests(TestModels models) : IClassFixture<TestModels>
{
    [Fact]
    public async Task A_dns_name_resolving_to_the_worker_is_routed_to_over_IPv4()
    {
        await using var worker = await WorkerSources.StartWorkerAsync(models, "w0");
        await using var gateway = await GatewayProcess.StartAsync("--workers-dns", $"localhost:{worker.HttpPort}", "--dns-refresh", "1");
        using var http = new HttpClient { Timeout = TestTimeouts.Default };

        var view = await gateway.WaitForWorkersAsync(http, v => v.Any(w => w.Available));

        Assert.Equal($"127.0.0.1:{worker.HttpPort}", Assert.Single(view).Destination);
        Assert.Equal("w0", await gateway.ChatAsync(http));
    }
}

/// <summary>Redis going away under a running gateway: the registry's last known workers keep serving.</summary>
public sealed class RedisOutageWorkerSourceTests(TestModels models) : IClassFixture<TestModels>
{
    [Fact]
    public async Task Routing_continues_with_the_last_known_workers_while_Redis_is_down_and_workers_announce_again_after()
    {
        await using var redis = await RedisServerProcess.StartAsync();
        await using var worker = await WorkerSources.StartWorkerAsync(models, "w0", "--redis", redis.Endpoint);
        await using var gateway = await GatewayProcess.StartAsync("--redis", redis.Endpoint);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, v => v.Count(w => w.Available) == 1);

        redis.Kill();
        // The gateway's next registry read (every 2 s) fails; the worker stays in the pool and keeps serving.
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(gateway.Output.Contains("unreadable", StringComparison.Ordinal)), () => gateway.Output);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("w0", await gateway.ChatAsync(http));
        }

        Assert.True(Assert.Single(await gateway.WorkersAsync(http)).Available);

        // Back up but empty, as after a crash: the gateway keeps its workers while they announce themselves again
        // (the worker's next beat), instead of dropping them on the first, empty read.
        await redis.StartAgainAsync();
        await using var client = await RedisTestConnections.AdminAsync(redis.Endpoint);
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            Assert.Equal("w0", await gateway.ChatAsync(http));
            return !(await client.RunAsync("ZSCORE", "gpufleet:{workers}", $"http://127.0.0.1:{worker.HttpPort}")).IsNull;
        });
        await Task.Delay(TimeSpan.FromSeconds(2.5)); // one more registry read, now with the worker in it
        Assert.Equal("w0", await gateway.ChatAsync(http));
    }
}

internal static class WorkerSources
{
    public static Task<WorkerProcess> StartWorkerAsync(TestModels models, string name, params string[] args) =>
        WorkerProcess.StartAsync(models.PathOf(DemoArchitecture.Qwen35), ["--name", name, "--ctx-size", "2048", "--enable-thinking", "false", .. args]);

    /// <summary>Workers w0 .. w(count-1), started side by side; all stopped again if any fails to start.</summary>
    public static async Task<WorkerGroup> StartAsync(TestModels models, int count, params string[] args)
    {
        var starts = Enumerable.Range(0, count).Select(i => StartWorkerAsync(models, $"w{i}", args)).ToList();
        try
        {
            return new WorkerGroup(await Task.WhenAll(starts));
        }
        catch
        {
            foreach (var start in starts.Where(s => s.IsCompletedSuccessfully))
            {
                await start.Result.DisposeAsync();
            }

            throw;
        }
    }
}

/// <summary>Worker processes that are stopped together.</summary>
internal sealed class WorkerGroup(IReadOnlyList<WorkerProcess> workers) : IAsyncDisposable
{
    public WorkerProcess this[int index] => workers[index];

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in workers)
        {
            await worker.DisposeAsync();
        }
    }
}
