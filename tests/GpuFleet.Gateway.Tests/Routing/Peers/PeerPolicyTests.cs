using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.Routing.Peers;
using GpuFleet.Testing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Tests.Routing.Peers;

/// <summary>The anchors' policies kept as benchmark baselines: each decides as its source describes, on virtual time.</summary>
public sealed class PeerPolicyTests
{
    private readonly ManualTimeProvider _clock = new();
    private readonly WorkerLoadBoard _board;
    private readonly WorkerTraffic _traffic;
    private readonly PeerSignals _signals;
    private readonly ClusterState _cluster = new("workers");
    private readonly DestinationState[] _destinations = [new("w1"), new("w2"), new("w3")];

    public PeerPolicyTests()
    {
        _board = new WorkerLoadBoard(_clock);
        _traffic = new WorkerTraffic(_clock);
        _signals = new PeerSignals(_board, _traffic);
    }

    private void Report(string worker, uint running = 0, uint queued = 0, ulong kvUsed = 0) =>
        _board.Update(worker, new WorkerStatus
        {
            Name = worker,
            Model = "m",
            Ready = true,
            Engine = new EngineStatus { TotalSlots = 4, RunningSlots = running, QueueDepth = queued, KvTokensUsed = kvUsed, KvTokensTotal = 1000 },
        });

    private static DefaultHttpContext Request(int blocks, ulong first = 1, Dictionary<string, int>? held = null)
    {
        var context = new DefaultHttpContext();
        context.Features.Set(new InspectedRequestFeature
        {
            Request = new InspectedRequest { Model = "m", Blocks = [.. Enumerable.Range(0, blocks).Select(i => first + (ulong)i)] },
            Affinity = new AffinityLookup(held ?? [], null),
        });
        return context;
    }

    private string? Pick(Yarp.ReverseProxy.LoadBalancing.ILoadBalancingPolicy policy, HttpContext context) =>
        policy.PickDestination(context, _cluster, _destinations)?.DestinationId;

    [Fact]
    public void Round_robin_takes_each_worker_in_turn_among_those_offered()
    {
        var policy = new RoundRobinPolicy();
        Assert.Equal(["w1", "w2", "w3", "w1"], Enumerable.Range(0, 4).Select(_ => Pick(policy, Request(1))));
        // A retry is offered only the workers it has not tried (the failover stage narrows the list).
        Assert.Equal("w3", policy.PickDestination(Request(1), _cluster, [_destinations[2]])?.DestinationId);
        Assert.Null(policy.PickDestination(Request(1), _cluster, []));
    }

    [Fact]
    public void Least_queue_takes_the_worker_with_the_fewest_requests()
    {
        Report("w1", running: 4, queued: 2);
        Report("w2", running: 1);
        Report("w3", running: 3);
        Assert.Equal("w2", Pick(new LeastQueuePolicy(_signals), Request(1)));
    }

    [Fact]
    public void Prefix_only_follows_the_longest_held_prefix_whatever_the_load_and_hashes_new_prefixes()
    {
        Report("w1", running: 4, queued: 50);
        var policy = new PrefixOnlyPolicy();
        Assert.Equal("w1", Pick(policy, Request(4, held: new() { ["w1"] = 3, ["w2"] = 1 })));
        // Nothing held: the first block decides, so the same beginning always lands on the same worker.
        Assert.Equal(Pick(policy, Request(4, first: 42)), Pick(policy, Request(9, first: 42)));
    }

    [Fact]
    public void Sglang_sends_a_prefix_back_to_its_worker_above_the_match_threshold_and_new_prompts_to_the_smallest_tree()
    {
        var policy = new SglangCacheAwarePolicy(_signals);
        var first = Pick(policy, Request(10, first: 100));
        var second = Pick(policy, Request(10, first: 500));

        Assert.NotEqual(first, second); // the second went to a worker whose tree was smaller
        Assert.Equal(first, Pick(policy, Request(12, first: 100))); // 10 of 12 blocks match: above 0.3
        Assert.NotEqual(first, Pick(policy, Request(40, first: 100))); // 10 of 40 match: below 0.3, smallest tree
    }

    [Fact]
    public void Sglang_goes_to_the_shortest_queue_when_the_load_is_imbalanced_past_both_thresholds()
    {
        var policy = new SglangCacheAwarePolicy(_signals);
        var home = Pick(policy, Request(10, first: 100))!;
        var sent = Enumerable.Range(0, 70).Select(_ => _traffic.Begin(home)).ToList();

        var chosen = Pick(policy, Request(10, first: 100));

        Assert.NotEqual(home, chosen); // 70 in flight against 0: max - min > 64 and max > 1.5 x min
        sent.ForEach(s => s.Dispose());
    }

    [Fact]
    public void Aibrix_skips_a_matched_worker_whose_load_is_above_the_mean_plus_two_sigma()
    {
        _destinations.ToList().ForEach(d => Report(d.DestinationId));
        var policy = new AibrixPrefixCachePolicy(_signals);
        var home = Pick(policy, Request(10, first: 100))!;
        Assert.Equal(home, Pick(policy, Request(11, first: 100)));

        // Ten workers: the matched one far above the others' load is skipped.
        var many = Enumerable.Range(1, 10).Select(i => new DestinationState($"v{i}")).ToArray();
        foreach (var d in many)
        {
            Report(d.DestinationId, running: d.DestinationId == "v1" ? 40u : 1u);
        }

        var overloaded = new AibrixPrefixCachePolicy(_signals);
        Report("v1", running: 1);
        Assert.Equal("v1", overloaded.PickDestination(Request(10, first: 7), _cluster, many)?.DestinationId);
        Report("v1", running: 40);
        Assert.NotEqual("v1", overloaded.PickDestination(Request(10, first: 7), _cluster, many)?.DestinationId);
    }

    [Fact]
    public void Llmd_weighs_prefix_queue_and_kv_utilisation()
    {
        Report("w1", queued: 0, kvUsed: 900);
        Report("w2", queued: 0, kvUsed: 100);
        Report("w3", queued: 5, kvUsed: 100);
        var policy = new LlmdWeightedScorerPolicy(_signals);

        Assert.Equal("w2", Pick(policy, Request(10))); // nothing held: the emptier KV with a short queue
        Assert.Equal("w1", Pick(policy, Request(10, held: new() { ["w1"] = 10 }))); // 3 x 1.0 outweighs 2 x 0.8 of KV
        Assert.Equal("w2", Pick(policy, Request(10, held: new() { ["w3"] = 4 }))); // 3 x 0.4 does not outweigh a long queue
    }

    [Fact]
    public void The_configured_policy_is_ours_by_default_and_an_unknown_name_is_refused_at_start()
    {
        var options = new RoutingOptions();
        var ours = new TimeToFirstTokenPolicy(_board, _traffic, options, new BytesPerToken(options), new WorkerEjections(new PassiveHealthOptions(), TimeProvider.System));
        Assert.Same(ours, new ConfiguredRoutingPolicy(options, ours, _signals).Selected);
        Assert.IsType<LlmdWeightedScorerPolicy>(new ConfiguredRoutingPolicy(new RoutingOptions { Policy = "llm-d" }, ours, _signals).Selected);
        Assert.Contains(new RoutingOptions { Policy = "fastest" }.Validate(), e => e.Contains("Gateway:Routing:Policy", StringComparison.Ordinal) && e.Contains("'fastest'", StringComparison.Ordinal));
        Assert.Empty(new RoutingOptions { Policy = "sglang-cache-aware" }.Validate());
    }
}
