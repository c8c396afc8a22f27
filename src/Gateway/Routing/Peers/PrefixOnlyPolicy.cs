using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing.Peers;

/// <summary>
/// Benchmark baseline: prefix affinity with no load signal at all. The worker holding the longest prefix of the prompt
/// (the affinity index) wins; when none holds any, the prompt's first block picks a worker by hash, so every prompt with
/// the same beginning lands on the same worker (the hot-spot trap of pure prefix hashing).
/// </summary>
internal sealed class PrefixOnlyPolicy : ILoadBalancingPolicy
{
    public const string PolicyName = "prefix-only";

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var candidates = PeerSignals.Candidates(availableDestinations);
        if (candidates.Count == 0)
        {
            return null;
        }

        var held = candidates.Select(d => PeerSignals.HeldBlocks(context, d.DestinationId)).ToList();
        var most = held.Max();
        if (most > 0)
        {
            return PeerSignals.Chosen(context, candidates[held.IndexOf(most)], RouteReasons.Affinity);
        }

        var blocks = PeerSignals.Blocks(context);
        var hash = blocks.Count > 0 ? blocks[0] : 0;
        return PeerSignals.Chosen(context, candidates[(int)(hash % (ulong)candidates.Count)], RouteReasons.Affinity);
    }
}
