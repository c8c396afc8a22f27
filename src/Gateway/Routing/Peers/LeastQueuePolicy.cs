using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing.Peers;

/// <summary>
/// Benchmark baseline, like paddler's balancer: the worker with the fewest requests (running, queued and sent since its
/// report), blind to what it caches; ties go round-robin.
/// </summary>
internal sealed class LeastQueuePolicy(PeerSignals signals) : ILoadBalancingPolicy
{
    public const string PolicyName = "least-queue";
    private long _next = -1;

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var candidates = PeerSignals.Candidates(availableDestinations);
        if (candidates.Count == 0)
        {
            return null;
        }

        var loads = candidates.Select(d => signals.Outstanding(d.DestinationId)).ToList();
        var least = loads.Min();
        var tied = candidates.Where((_, i) => loads[i] == least).ToList();
        return PeerSignals.Chosen(context, tied[(int)((ulong)Interlocked.Increment(ref _next) % (ulong)tied.Count)], RouteReasons.Load);
    }
}
