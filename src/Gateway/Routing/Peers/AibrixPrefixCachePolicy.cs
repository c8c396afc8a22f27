using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing.Peers;

/// <summary>
/// Benchmark baseline after AIBrix's <c>prefix-cache</c> routing: a router-side prefix-block table; among the workers
/// with the longest match, one qualifies only while its running requests are at most the fleet's mean + 2 standard
/// deviations (an overloaded match is skipped); the least loaded qualifying match wins. With no qualifying match the
/// worker with the fewest running requests gets it.
/// </summary>
internal sealed class AibrixPrefixCachePolicy(PeerSignals signals) : ILoadBalancingPolicy
{
    public const string PolicyName = "aibrix-prefix-cache";
    private readonly RouterPrefixTree _table = new();

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var candidates = PeerSignals.Candidates(availableDestinations);
        if (candidates.Count == 0)
        {
            return null;
        }

        var blocks = PeerSignals.Blocks(context);
        var running = candidates.Select(d => signals.Outstanding(d.DestinationId)).ToList();
        var mean = running.Average();
        var sigma = Math.Sqrt(running.Average(r => (r - mean) * (r - mean)));
        var matches = candidates.Select(d => _table.Match(d.DestinationId, blocks)).ToList();
        var qualifying = Enumerable.Range(0, candidates.Count).Where(i => matches[i] > 0 && running[i] <= mean + (2 * sigma)).ToList();
        DestinationState chosen;
        string reason;
        if (qualifying.Count > 0)
        {
            var best = qualifying.Max(i => matches[i]);
            chosen = candidates[qualifying.Where(i => matches[i] == best).MinBy(i => running[i])];
            reason = RouteReasons.Affinity;
        }
        else
        {
            chosen = candidates[running.IndexOf(running.Min())];
            reason = RouteReasons.Load;
        }

        _table.Insert(chosen.DestinationId, blocks);
        return PeerSignals.Chosen(context, chosen, reason);
    }
}
