using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing.Peers;

/// <summary>
/// Benchmark baseline after llm-d's inference scheduler with its precise prefix-cache scorer: each worker scores
/// <c>3 x prefix + 2 x queue + 2 x KV</c> (the weights of llm-d's default profile), where prefix is the share of the
/// prompt's blocks the worker holds per the affinity index (kept precise by the workers' holdings reports, as llm-d's
/// KV events keep its index), queue is 1 for the shortest and 0 for the longest waiting queue, and KV is 1 - KV-cache
/// utilisation. The highest score wins; ties go to the fewest outstanding requests.
/// </summary>
internal sealed class LlmdWeightedScorerPolicy(PeerSignals signals) : ILoadBalancingPolicy
{
    public const string PolicyName = "llm-d";
    public const double PrefixWeight = 3;
    public const double QueueWeight = 2;
    public const double KvWeight = 2;

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var candidates = PeerSignals.Candidates(availableDestinations);
        if (candidates.Count == 0)
        {
            return null;
        }

        var blocks = PeerSignals.Blocks(context).Count;
        var queues = candidates.Select(d => signals.Waiting(d.DestinationId)).ToList();
        int minQueue = queues.Min(), maxQueue = queues.Max();
        var scored = candidates.Select((d, i) =>
        {
            var prefix = blocks == 0 ? 0 : (double)PeerSignals.HeldBlocks(context, d.DestinationId) / blocks;
            var queue = maxQueue == minQueue ? 1 : 1 - ((double)(queues[i] - minQueue) / (maxQueue - minQueue));
            var kv = 1 - signals.KvUtilisation(d.DestinationId);
            return (Destination: d, Score: (PrefixWeight * prefix) + (QueueWeight * queue) + (KvWeight * kv), Prefix: prefix);
        }).ToList();
        var best = scored.OrderByDescending(s => s.Score).ThenBy(s => signals.Outstanding(s.Destination.DestinationId)).First();
        return PeerSignals.Chosen(context, best.Destination, best.Prefix > 0 ? RouteReasons.Affinity : RouteReasons.Load);
    }
}
