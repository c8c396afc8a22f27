using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Testing;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>The embedded affinity index on virtual time: depths by bisection, expiry, corrections with grace, sessions and the bound.</summary>
public sealed class InProcessAffinityStoreTests
{
    private static readonly string[] Workers = ["w1", "w2", "w3"];
    private readonly ManualTimeProvider _clock = new();

    private static ulong[] Chain(ulong seed, int length) => [.. Enumerable.Range(0, length).Select(i => (seed * 1_000_003UL) + (ulong)i + 1)];

    private static async Task<IReadOnlyDictionary<string, int>> DepthsAsync(IAffinityStore store, string model, IReadOnlyList<ulong> blocks, params string[] workers) =>
        (await store.LookupAsync(model, blocks, workers.Length == 0 ? Workers : workers, null, CancellationToken.None)).HeldBlocks;

    [Fact]
    public async Task Lookup_gives_each_worker_the_depth_of_the_prefix_it_holds()
    {
        var store = new InProcessAffinityStore(new RoutingOptions(), _clock);
        var chain = Chain(1, 10);
        await store.RecordAsync("m", chain, "w1", null, CancellationToken.None);
        await store.RecordAsync("m", chain[..4], "w2", null, CancellationToken.None);

        var depths = await DepthsAsync(store, "m", chain);
        Assert.Equal(10, depths["w1"]);
        Assert.Equal(4, depths["w2"]);
        Assert.Equal(0, depths["w3"]);
        Assert.Equal(3, depths.Count);

        // Every depth 0..n is found, for every chain length (bisection boundaries).
        for (var recorded = 0; recorded <= 10; recorded++)
        {
            var local = new InProcessAffinityStore(new RoutingOptions(), _clock);
            await local.RecordAsync("m", chain[..recorded], "w1", null, CancellationToken.None);
            for (var asked = 0; asked <= 12; asked++)
            {
                var query = Chain(1, asked);
                Assert.Equal(Math.Min(recorded, asked), (await DepthsAsync(local, "m", query, "w1"))["w1"]);
            }
        }
    }

    [Fact]
    public async Task A_prompt_that_diverges_gets_only_the_shared_leading_blocks()
    {
        var store = new InProcessAffinityStore(new RoutingOptions(), _clock);
        var chain = Chain(1, 8);
        await store.RecordAsync("m", chain, "w1", null, CancellationToken.None);

        ulong[] diverging = [.. chain[..3], 900, 901, 902, 903, 904, 905];
        Assert.Equal(3, (await DepthsAsync(store, "m", diverging))["w1"]);
        Assert.Equal(0, (await DepthsAsync(store, "m", Chain(2, 8)))["w1"]);
        Assert.Equal(0, (await DepthsAsync(store, "other-model", chain))["w1"]);
        Assert.Equal(0, (await DepthsAsync(store, "m", []))["w1"]);
    }

    [Fact]
    public async Task Blocks_expire_after_the_affinity_ttl_unless_confirmed_again()
    {
        var options = new RoutingOptions { AffinityTtl = TimeSpan.FromMinutes(30) };
        var store = new InProcessAffinityStore(options, _clock);
        var chain = Chain(3, 6);
        await store.RecordAsync("m", chain, "w1", null, CancellationToken.None);
        await store.RecordAsync("m", chain, "w2", null, CancellationToken.None);

        _clock.Advance(TimeSpan.FromMinutes(20));
        await store.RecordAsync("m", chain[..2], "w2", null, CancellationToken.None); // w2 confirms the first two
        _clock.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(6, (await DepthsAsync(store, "m", chain))["w1"]);

        _clock.Advance(TimeSpan.FromMilliseconds(1));
        var depths = await DepthsAsync(store, "m", chain);
        Assert.Equal(0, depths["w1"]);
        Assert.Equal(2, depths["w2"]);

        _clock.Advance(TimeSpan.FromMinutes(20));
        Assert.Equal(0, (await DepthsAsync(store, "m", chain))["w2"]);
    }

    [Fact]
    public async Task Holdings_drop_unreported_blocks_only_after_the_grace_and_add_reported_ones()
    {
        var options = new RoutingOptions { HoldingsGrace = TimeSpan.FromSeconds(10) };
        var store = new InProcessAffinityStore(options, _clock);
        var chain = Chain(4, 6);
        await store.RecordAsync("m", chain, "w1", null, CancellationToken.None);

        // A report taken before the request may not list its blocks yet: within the grace nothing is dropped.
        _clock.Advance(TimeSpan.FromSeconds(9));
        await store.ApplyHoldingsAsync("m", "w1", chain[..2], CancellationToken.None);
        Assert.Equal(6, (await DepthsAsync(store, "m", chain))["w1"]);

        _clock.Advance(TimeSpan.FromSeconds(1)); // 10 s after the record: the grace is over
        await store.ApplyHoldingsAsync("m", "w1", chain[..2], CancellationToken.None);
        Assert.Equal(2, (await DepthsAsync(store, "m", chain))["w1"]);

        // Reported blocks are added (and confirmed: they outlive the TTL counted from the report).
        await store.ApplyHoldingsAsync("m", "w2", chain[..5], CancellationToken.None);
        Assert.Equal(5, (await DepthsAsync(store, "m", chain))["w2"]);

        // An empty report (after the grace) clears the worker; other workers and models are untouched.
        await store.RecordAsync("other", chain, "w1", null, CancellationToken.None);
        _clock.Advance(TimeSpan.FromSeconds(11));
        await store.ApplyHoldingsAsync("m", "w1", [], CancellationToken.None);
        var depths = await DepthsAsync(store, "m", chain);
        Assert.Equal(0, depths["w1"]);
        Assert.Equal(5, depths["w2"]);
        Assert.Equal(6, (await DepthsAsync(store, "other", chain))["w1"]);
    }

    [Fact]
    public async Task A_record_after_a_report_is_protected_by_the_grace_counted_from_the_record()
    {
        var store = new InProcessAffinityStore(new RoutingOptions { HoldingsGrace = TimeSpan.FromSeconds(10) }, _clock);
        var chain = Chain(5, 4);
        await store.RecordAsync("m", chain[..2], "w1", null, CancellationToken.None);
        _clock.Advance(TimeSpan.FromSeconds(30));
        await store.RecordAsync("m", chain, "w1", null, CancellationToken.None); // the longer turn, confirmed now

        _clock.Advance(TimeSpan.FromSeconds(5));
        await store.ApplyHoldingsAsync("m", "w1", [], CancellationToken.None); // a report that predates it
        Assert.Equal(4, (await DepthsAsync(store, "m", chain))["w1"]);
    }

    [Fact]
    public async Task Sessions_stick_to_the_last_worker_and_expire_after_the_session_ttl()
    {
        var options = new RoutingOptions { SessionTtl = TimeSpan.FromMinutes(30) };
        var store = new InProcessAffinityStore(options, _clock);
        await store.RecordAsync("m", [], "w2", "session-a", CancellationToken.None);
        await store.RecordAsync("m", Chain(6, 2), "w3", "session-b", CancellationToken.None);

        Assert.Equal("w2", (await store.LookupAsync("m", [], Workers, "session-a", CancellationToken.None)).SessionWorker);
        Assert.Equal("w3", (await store.LookupAsync("m", [], Workers, "session-b", CancellationToken.None)).SessionWorker);
        Assert.Null((await store.LookupAsync("m", [], Workers, "session-c", CancellationToken.None)).SessionWorker);
        Assert.Null((await store.LookupAsync("m", [], Workers, null, CancellationToken.None)).SessionWorker);

        _clock.Advance(TimeSpan.FromMinutes(20));
        await store.RecordAsync("m", [], "w1", "session-a", CancellationToken.None); // moved, and refreshed
        _clock.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal("w1", (await store.LookupAsync("m", [], Workers, "session-a", CancellationToken.None)).SessionWorker);
        Assert.Null((await store.LookupAsync("m", [], Workers, "session-b", CancellationToken.None)).SessionWorker);
    }

    [Fact]
    public async Task The_index_stays_within_its_bound_and_keeps_the_most_recent_blocks()
    {
        var options = new RoutingOptions { MaxInProcessBlocks = 1000 };
        Assert.Empty(options.Validate());
        var store = new InProcessAffinityStore(options, _clock);
        var chains = new List<ulong[]>();
        for (var i = 0; i < 200; i++)
        {
            var chain = Chain((ulong)i + 10, 40);
            chains.Add(chain);
            await store.RecordAsync("m", chain, Workers[i % 3], null, CancellationToken.None);
            Assert.InRange(store.BlockCount, 1, 1000);
            _clock.Advance(TimeSpan.FromMilliseconds(100));
        }

        // 8000 blocks went in: the newest chains are still there, the oldest are gone.
        Assert.Equal(40, (await DepthsAsync(store, "m", chains[^1]))[Workers[199 % 3]]);
        Assert.Equal(40, (await DepthsAsync(store, "m", chains[^2]))[Workers[198 % 3]]);
        Assert.Equal(0, (await DepthsAsync(store, "m", chains[0]))[Workers[0]]);
        Assert.Equal(0, (await DepthsAsync(store, "m", chains[100]))[Workers[100 % 3]]);

        // One record far beyond the bound is bounded too.
        await store.RecordAsync("m", Chain(999, 5000), "w1", null, CancellationToken.None);
        Assert.InRange(store.BlockCount, 1, 1000);
    }

    [Fact]
    public async Task Expired_blocks_are_dropped_first_when_the_bound_is_reached()
    {
        var options = new RoutingOptions { MaxInProcessBlocks = 1000, AffinityTtl = TimeSpan.FromMinutes(1) };
        var store = new InProcessAffinityStore(options, _clock);
        await store.RecordAsync("m", Chain(1, 900), "w1", null, CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(2));
        var fresh = Chain(2, 200);
        await store.RecordAsync("m", fresh, "w2", null, CancellationToken.None);
        Assert.Equal(200, store.BlockCount);
        Assert.Equal(200, (await DepthsAsync(store, "m", fresh))["w2"]);
    }
}
