using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.State;
using GpuFleet.Gateway.Tests.State;
using GpuFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>The router's affinity index: Redis when it answers, the always-fed local index when it does not.</summary>
public sealed class AffinityIndexTests
{
    private static readonly string[] Workers = ["w1", "w2", "w3"];
    private static readonly byte[] Key = Enumerable.Range(40, 32).Select(i => (byte)i).ToArray();

    private static ulong[] Chain(ulong seed, int length) => [.. Enumerable.Range(0, length).Select(i => (seed * 1_000_003UL) + (ulong)i + 1)];

    private static GatewayRedis Redis(string? endpoint) => RedisTestConnections.Gateway(endpoint);

    // A lookup timeout far above a healthy round trip, so that only a dead or stalled Redis makes a lookup local.
    private static AffinityIndex Index(GatewayRedis redis, TimeSpan? lookupTimeout = null) =>
        new(redis, new PrefixHasher(Key, 64), new RoutingOptions { LookupTimeout = lookupTimeout ?? TimeSpan.FromSeconds(5) }, TimeProvider.System, NullLogger<AffinityIndex>.Instance);

    [Fact]
    public async Task Replicas_share_affinity_through_redis_and_fall_back_to_their_own_state_when_it_dies()
    {
        var server = await RedisServerProcess.StartAsync();
        await using (server)
        {
            await using var redisA = Redis(server.Endpoint);
            await using var redisB = Redis(server.Endpoint);
            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redisA.Available && redisB.Available));
            var a = Index(redisA);
            var b = Index(redisB);
            var chain = Chain(1, 6);

            await a.RecordSharedAsync("m", chain, "w2", "session-1");
            var shared = await b.LookupAsync("m", chain, Workers, "session-1", TestTimeouts.Token());
            Assert.Equal(6, shared.HeldBlocks["w2"]);
            Assert.Equal("w2", shared.SessionWorker);
            Assert.Equal(0, a.Fallbacks);
            Assert.Equal(0, b.Fallbacks);
            Assert.Equal(6, a.Local.BlockCount);
            Assert.Equal(0, b.Local.BlockCount);

            server.Kill();
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < 5; i++)
            {
                // A answers from its own warm state, B (which never recorded it) from its empty one; neither throws.
                var local = await a.LookupAsync("m", chain, Workers, "session-1", TestTimeouts.Token());
                Assert.Equal(6, local.HeldBlocks["w2"]);
                Assert.Equal(0, local.HeldBlocks["w1"]);
                Assert.Equal("w2", local.SessionWorker);
                var empty = await b.LookupAsync("m", chain, Workers, "session-1", TestTimeouts.Token());
                Assert.Equal(0, empty.HeldBlocks["w2"]);
                Assert.Null(empty.SessionWorker);
            }

            Assert.Equal(5, a.Fallbacks);
            Assert.Equal(5, b.Fallbacks);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");

            // Writes while Redis is down do not throw and keep feeding the local index.
            b.Record("m", chain[..3], "w3", "session-2");
            await b.ApplyHoldingsAsync("m", "w1", chain[..2], TestTimeouts.Token());
            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redisB.Degraded));
            var afterWrites = await b.LookupAsync("m", chain, Workers, "session-2", TestTimeouts.Token());
            Assert.Equal(3, afterWrites.HeldBlocks["w3"]);
            Assert.Equal(2, afterWrites.HeldBlocks["w1"]);
            Assert.Equal("w3", afterWrites.SessionWorker);
            Assert.Equal(6, b.Fallbacks);
        }
    }

    [Fact]
    public async Task A_redis_slower_than_the_lookup_timeout_is_answered_locally_at_the_timeout()
    {
        await using var server = await RedisServerProcess.StartAsync(null, "--enable-debug-command", "yes");
        await using var redis = Redis(server.Endpoint);
        await using var admin = await RedisTestConnections.AdminAsync(server.Endpoint, TimeSpan.FromSeconds(1));
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redis.Available));
        var index = Index(redis, TimeSpan.FromMilliseconds(100));
        index.Record("m", Chain(5, 3), "w2", null); // local at once, Redis in the background

        // The server stalls for 2 s with the connection open (a paused process, a partition). The bound below leaves
        // room for .NET timers firing late on a starved thread pool (seen: a 100 ms timer at 1.1 s on 2 cores), and
        // still tells a lookup cut off at its timeout from one that waited for the server.
        var sleeping = admin.RunAsync("DEBUG", "SLEEP", "2");
        await Task.Delay(100);
        var watch = Stopwatch.StartNew();
        var lookup = await index.LookupAsync("m", Chain(5, 3), Workers, null, TestTimeouts.Token());
        Assert.True(watch.Elapsed < TimeSpan.FromMilliseconds(1500), $"took {watch.Elapsed}");
        Assert.Equal(3, lookup.HeldBlocks["w2"]);
        Assert.Equal(1, index.Fallbacks);
        _ = await Record.ExceptionAsync(() => sleeping); // the admin's own 1 s command timeout
    }

    [Fact]
    public async Task A_redis_that_was_never_reachable_is_a_fallback_from_the_first_lookup()
    {
        // A port held by a socket that never listens: connections are refused, and no other test's server can take it.
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var redis = Redis(closed.LocalEndPoint!.ToString());
        var index = Index(redis);
        index.Record("m", Chain(2, 4), "w1", null);
        var lookup = await index.LookupAsync("m", Chain(2, 4), Workers, null, TestTimeouts.Token());
        Assert.Equal(4, lookup.HeldBlocks["w1"]);
        Assert.Equal(1, index.Fallbacks);
        Assert.True(redis.Configured);
    }

    [Fact]
    public async Task Without_redis_the_local_index_is_the_store_and_nothing_counts_as_a_fallback()
    {
        await using var redis = Redis(null);
        Assert.False(redis.Configured);
        var index = Index(redis);
        await index.RecordSharedAsync("m", Chain(3, 5), "w3", "s");
        index.Record("m", Chain(4, 2), "w1", null);
        var lookup = await index.LookupAsync("m", Chain(3, 5), Workers, "s", TestTimeouts.Token());
        Assert.Equal(5, lookup.HeldBlocks["w3"]);
        Assert.Equal("w3", lookup.SessionWorker);
        Assert.Equal(2, (await index.LookupAsync("m", Chain(4, 2), Workers, null, TestTimeouts.Token())).HeldBlocks["w1"]);
        Assert.Equal(0, index.Fallbacks);
    }
}
