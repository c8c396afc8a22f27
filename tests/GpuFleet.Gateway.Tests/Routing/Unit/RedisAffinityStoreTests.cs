using System.Text;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.Tests.State;
using GpuFleet.Testing;
using StackExchange.Redis;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>One real redis-server for the Redis affinity store tests of a class.</summary>
public sealed class RedisAffinityFixture : IAsyncLifetime
{
    public RedisServerProcess Server { get; private set; } = null!;

    public ConnectionMultiplexer Connection { get; private set; } = null!;

    public IDatabase Database => Connection.GetDatabase();

    public async Task InitializeAsync()
    {
        Server = await RedisServerProcess.StartAsync();
        // A generous command timeout: these tests are about the store, not about a machine busy with other builds.
        Connection = await RedisTestConnections.AdminAsync(Server.Endpoint, TimeSpan.FromSeconds(10));
    }

    public async Task DisposeAsync()
    {
        await Connection.DisposeAsync();
        await Server.DisposeAsync();
    }
}

/// <summary>
/// The shared affinity index against a real redis-server: the same behaviours as the in-process store (depths,
/// sessions, corrections with grace on the gateway's clock, expiry) and nothing readable stored in clear.
/// </summary>
public sealed class RedisAffinityStoreTests(RedisAffinityFixture redis) : IClassFixture<RedisAffinityFixture>
{
    private static readonly string[] Workers = ["w1", "w2", "w3"];
    private static readonly byte[] Key = Enumerable.Range(7, 32).Select(i => (byte)i).ToArray();
    private readonly ManualTimeProvider _clock = new();
    private readonly PrefixHasher _hasher = new(Key, 64);

    private RedisAffinityStore Store(RoutingOptions? options = null) => new(redis.Database, _hasher, options ?? new RoutingOptions(), _clock);

    private static ulong[] Chain(ulong seed, int length) => [.. Enumerable.Range(0, length).Select(i => (seed * 1_000_003UL) + (ulong)i + 1)];

    private static async Task<IReadOnlyDictionary<string, int>> DepthsAsync(IAffinityStore store, string model, IReadOnlyList<ulong> blocks, params string[] workers) =>
        (await store.LookupAsync(model, blocks, workers.Length == 0 ? Workers : workers, null, TestTimeouts.Token())).HeldBlocks;

    private async Task FlushAsync() => await redis.Connection.RunAsync("FLUSHALL");

    private async Task<List<string>> KeysAsync()
    {
        var keys = new List<string>();
        var cursor = "0";
        do
        {
            var reply = (RedisResult[])(await redis.Connection.RunAsync("SCAN", cursor, "COUNT", 1000))!;
            cursor = (string)reply[0]!;
            keys.AddRange(((RedisResult[])reply[1]!).Select(k => (string)k!));
        }
        while (cursor != "0");
        return keys;
    }

    [Fact]
    public async Task Lookup_gives_each_worker_the_depth_of_the_prefix_it_holds()
    {
        await FlushAsync();
        var store = Store();
        var chain = Chain(1, 10);
        await store.RecordAsync("m", chain, "w1", null, TestTimeouts.Token());
        await store.RecordAsync("m", chain[..4], "w2", null, TestTimeouts.Token());

        var depths = await DepthsAsync(store, "m", chain);
        Assert.Equal(10, depths["w1"]);
        Assert.Equal(4, depths["w2"]);
        Assert.Equal(0, depths["w3"]);
        Assert.Equal(3, depths.Count);

        ulong[] diverging = [.. chain[..3], 900, 901, 902];
        Assert.Equal(3, (await DepthsAsync(store, "m", diverging))["w1"]);
        Assert.Equal(0, (await DepthsAsync(store, "other-model", chain))["w1"]);
        Assert.Equal(0, (await DepthsAsync(store, "m", []))["w1"]);

        for (var recorded = 0; recorded <= 10; recorded++)
        {
            var model = $"bisect-{recorded}";
            await store.RecordAsync(model, chain[..recorded], "w1", null, TestTimeouts.Token());
            for (var asked = 0; asked <= 12; asked++)
            {
                Assert.Equal(Math.Min(recorded, asked), (await DepthsAsync(store, model, Chain(1, asked), "w1"))["w1"]);
            }
        }
    }

    [Fact]
    public async Task A_replica_with_the_same_key_sees_the_records_and_one_with_another_key_does_not()
    {
        await FlushAsync();
        var chain = Chain(2, 5);
        await Store().RecordAsync("m", chain, "w2", "sess", TestTimeouts.Token());

        var sameKey = new RedisAffinityStore(redis.Database, new PrefixHasher((byte[])Key.Clone(), 64), new RoutingOptions(), new ManualTimeProvider());
        var lookup = await sameKey.LookupAsync("m", chain, Workers, "sess", TestTimeouts.Token());
        Assert.Equal(5, lookup.HeldBlocks["w2"]);
        Assert.Equal("w2", lookup.SessionWorker);

        var otherKey = new RedisAffinityStore(redis.Database, new PrefixHasher([.. Key.Reverse()], 64), new RoutingOptions(), new ManualTimeProvider());
        Assert.Equal(0, (await DepthsAsync(otherKey, "m", chain))["w2"]);
    }

    [Fact]
    public async Task Sessions_are_stored_moved_and_expire()
    {
        await FlushAsync();
        var store = Store(new RoutingOptions { SessionTtl = TimeSpan.FromMinutes(1) });
        var sessionA = _hasher.Tag("session", "a");
        var sessionB = _hasher.Tag("session", "b");
        await store.RecordAsync("m", [], "w2", sessionA, TestTimeouts.Token());
        await store.RecordAsync("m", Chain(3, 2), "w3", sessionB, TestTimeouts.Token());

        Assert.Equal("w2", (await store.LookupAsync("m", [], Workers, sessionA, TestTimeouts.Token())).SessionWorker);
        var withBlocks = await store.LookupAsync("m", Chain(3, 2), Workers, sessionB, TestTimeouts.Token());
        Assert.Equal("w3", withBlocks.SessionWorker);
        Assert.Equal(2, withBlocks.HeldBlocks["w3"]);
        Assert.Null((await store.LookupAsync("m", [], Workers, _hasher.Tag("session", "c"), TestTimeouts.Token())).SessionWorker);
        Assert.Null((await store.LookupAsync("m", [], Workers, null, TestTimeouts.Token())).SessionWorker);
        Assert.Null((await store.LookupAsync("m", [], [], _hasher.Tag("session", "c"), TestTimeouts.Token())).SessionWorker);
        Assert.Equal("w2", (await store.LookupAsync("m", [], [], sessionA, TestTimeouts.Token())).SessionWorker);

        await store.RecordAsync("m", [], "w1", sessionA, TestTimeouts.Token());
        Assert.Equal("w1", (await store.LookupAsync("m", [], Workers, sessionA, TestTimeouts.Token())).SessionWorker);
        Assert.InRange((long)await redis.Connection.RunAsync("PTTL", "gpufleet:sess:" + sessionA), 50_000, 60_000);

        // Redis expires sessions on its own clock.
        var shortLived = Store(new RoutingOptions { SessionTtl = TimeSpan.FromMilliseconds(150) });
        var sessionC = _hasher.Tag("session", "c");
        await shortLived.RecordAsync("m", [], "w3", sessionC, TestTimeouts.Token());
        await Task.Delay(400);
        Assert.Null((await store.LookupAsync("m", [], Workers, sessionC, TestTimeouts.Token())).SessionWorker);
        Assert.Equal(0, (long)await redis.Connection.RunAsync("EXISTS", "gpufleet:sess:" + sessionC));
    }

    [Fact]
    public async Task Blocks_and_holdings_sets_expire_after_the_affinity_ttl()
    {
        await FlushAsync();
        var store = Store(new RoutingOptions { AffinityTtl = TimeSpan.FromMinutes(1) });
        var chain = Chain(4, 3);
        await store.RecordAsync("m", chain, "w1", null, TestTimeouts.Token());
        var keys = await KeysAsync();
        Assert.Equal(4, keys.Count); // three blocks and w1's holdings set
        foreach (var key in keys)
        {
            Assert.InRange((long)await redis.Connection.RunAsync("PTTL", key), 50_000, 60_000);
        }

        await FlushAsync();
        var shortLived = Store(new RoutingOptions { AffinityTtl = TimeSpan.FromMilliseconds(150) });
        await shortLived.RecordAsync("m", chain, "w1", null, TestTimeouts.Token());
        await Task.Delay(400);
        Assert.Equal(0, (await DepthsAsync(store, "m", chain))["w1"]);
        Assert.Empty(await KeysAsync());
    }

    [Fact]
    public async Task A_workers_claim_on_a_block_expires_even_while_another_worker_keeps_confirming_it()
    {
        await FlushAsync();
        var store = Store(new RoutingOptions { AffinityTtl = TimeSpan.FromSeconds(60) });
        var chain = Chain(5, 3);
        await store.RecordAsync("m", chain, "w1", null, TestTimeouts.Token());
        _clock.Advance(TimeSpan.FromSeconds(42));
        await store.RecordAsync("m", chain, "w2", null, TestTimeouts.Token());
        _clock.Advance(TimeSpan.FromSeconds(42));

        // 84 s after w1's last confirmation, with a TTL of 60 s (the key lives on: w2 confirmed it 42 s ago).
        var depths = await DepthsAsync(store, "m", chain);
        Assert.Equal(3, depths["w2"]);
        Assert.Equal(0, depths["w1"]);
    }

    [Fact]
    public async Task Holdings_drop_unreported_blocks_only_after_the_grace_and_add_reported_ones()
    {
        await FlushAsync();
        var store = Store(new RoutingOptions { HoldingsGrace = TimeSpan.FromSeconds(10) });
        var chain = Chain(6, 6);
        await store.RecordAsync("m", chain, "w1", null, TestTimeouts.Token());

        _clock.Advance(TimeSpan.FromSeconds(9));
        await store.ApplyHoldingsAsync("m", "w1", chain[..2], TestTimeouts.Token());
        Assert.Equal(6, (await DepthsAsync(store, "m", chain))["w1"]);

        _clock.Advance(TimeSpan.FromSeconds(1));
        await store.ApplyHoldingsAsync("m", "w1", chain[..2], TestTimeouts.Token());
        Assert.Equal(2, (await DepthsAsync(store, "m", chain))["w1"]);

        await store.ApplyHoldingsAsync("m", "w2", chain[..5], TestTimeouts.Token());
        Assert.Equal(5, (await DepthsAsync(store, "m", chain))["w2"]);

        // A record after the report is protected by the grace counted from the record.
        _clock.Advance(TimeSpan.FromSeconds(30));
        await store.RecordAsync("m", chain, "w1", null, TestTimeouts.Token());
        _clock.Advance(TimeSpan.FromSeconds(5));
        await store.ApplyHoldingsAsync("m", "w1", [], TestTimeouts.Token());
        Assert.Equal(6, (await DepthsAsync(store, "m", chain))["w1"]);

        // An empty report after the grace clears the worker, leaving other workers and models alone.
        await store.RecordAsync("other", chain, "w1", null, TestTimeouts.Token());
        _clock.Advance(TimeSpan.FromSeconds(11));
        await store.ApplyHoldingsAsync("m", "w1", [], TestTimeouts.Token());
        var depths = await DepthsAsync(store, "m", chain);
        Assert.Equal(0, depths["w1"]);
        Assert.Equal(5, depths["w2"]);
        Assert.Equal(6, (await DepthsAsync(store, "other", chain))["w1"]);
        var heldSet = "gpufleet:held:" + _hasher.Tag("model", "m") + ":w1";
        Assert.Equal(0, (long)await redis.Connection.RunAsync("SCARD", heldSet));
    }

    [Fact]
    public async Task Nothing_in_redis_names_the_model_the_session_or_the_prompt_text()
    {
        await FlushAsync();
        const string model = "secret-model-name";
        const string session = "secret-session-id";
        var prompt = string.Concat(Enumerable.Range(0, 20).Select(i => $"confidential-{i:D2} merger plan for acme "));
        var inspector = new RequestInspector(_hasher);
        var request = inspector.Inspect(Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","messages":[{"role":"user","content":"{{prompt}}"}]}"""), chat: true, session);
        Assert.True(request.Blocks.Count > 5);

        var store = Store();
        await store.RecordAsync(request.Model, request.Blocks, "w1", request.SessionKey, TestTimeouts.Token());
        await store.ApplyHoldingsAsync(request.Model, "w2", request.Blocks, TestTimeouts.Token());
        var lookup = await store.LookupAsync(request.Model, request.Blocks, Workers, request.SessionKey, TestTimeouts.Token());
        Assert.Equal(request.Blocks.Count, lookup.HeldBlocks["w1"]);
        Assert.Equal(request.Blocks.Count, lookup.HeldBlocks["w2"]);
        Assert.Equal("w1", lookup.SessionWorker);

        var keys = await KeysAsync();
        Assert.Equal(request.Blocks.Count + 3, keys.Count); // blocks, two holdings sets, one session
        var values = new List<string>();
        foreach (var key in keys)
        {
            var type = (string?)await redis.Connection.RunAsync("TYPE", key);
            values.AddRange(type switch
            {
                "hash" => (await redis.Database.HashGetAllAsync(key)).SelectMany(e => new[] { (string)e.Name!, (string)e.Value! }),
                "set" => (await redis.Database.SetMembersAsync(key)).Select(v => (string)v!),
                "string" => [(string)(await redis.Database.StringGetAsync(key))!],
                _ => throw new InvalidOperationException($"unexpected {type} at {key}"),
            });
            Assert.InRange((long)await redis.Connection.RunAsync("PTTL", key), 1, (long)TimeSpan.FromMinutes(30).TotalMilliseconds);
        }

        var modelTag = _hasher.Tag("model", model);
        Assert.All(keys, key => Assert.Matches($"^gpufleet:(aff:{modelTag}:[0-9a-f]{{16}}|held:{modelTag}:w[12]|sess:[0-9a-f]{{24}})$", key));
        foreach (var text in keys.Concat(values))
        {
            Assert.DoesNotContain(model, text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("secret", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("confidential", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("merger", text, StringComparison.OrdinalIgnoreCase);
        }
    }
}
