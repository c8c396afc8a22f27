using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing.Peers;

/// <summary>Benchmark baseline: each request to the next worker in turn, blind to load and cache.</summary>
internal sealed class RoundRobinPolicy : ILoadBalancingPolicy
{
    public const string PolicyName = "round-robin";
    private long _next = -1;

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var candidates = PeerSignals.Candidates(availableDestinations);
        return candidates.Count == 0 ? null
            : PeerSignals.Chosen(context, candidates[(int)((ulong)Interlocked.Increment(ref _next) % (ulong)candidates.Count)], RouteReasons.Load);
    }
}
