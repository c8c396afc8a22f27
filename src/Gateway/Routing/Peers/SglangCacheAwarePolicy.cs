using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing.Peers;

/// <summary>
/// Benchmark baseline after SGLang's router <c>cache_aware</c> policy: an approximate prefix tree per worker built from the
/// router's own routing, and the router's own count of running requests per worker. When the load is imbalanced
/// (max - min &gt; <see cref="BalanceAbsThreshold"/> and max &gt; <see cref="BalanceRelThreshold"/> x min) the request goes to
/// the shortest queue; otherwise to the worker with the best prefix match if the match covers more than
/// <see cref="CacheThreshold"/> of the prompt, else to the worker with the smallest tree (the most room to cache).
/// </summary>
internal sealed class SglangCacheAwarePolicy(PeerSignals signals) : ILoadBalancingPolicy
{
    public const string PolicyName = "sglang-cache-aware";
    public const int BalanceAbsThreshold = 64;
    public const double BalanceRelThreshold = 1.5;
    public const double CacheThreshold = 0.3;
    private readonly RouterPrefixTree _tree = new();

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        var candidates = PeerSignals.Candidates(availableDestinations);
        if (candidates.Count == 0)
        {
            return null;
        }

        var blocks = PeerSignals.Blocks(context);
        var loads = candidates.Select(d => signals.InFlight(d.DestinationId)).ToList();
        int max = loads.Max(), min = loads.Min();
        DestinationState chosen;
        string reason;
        if (max - min > BalanceAbsThreshold && max > BalanceRelThreshold * min)
        {
            chosen = candidates[loads.IndexOf(min)];
            reason = RouteReasons.Load;
        }
        else
        {
            var matches = candidates.Select(d => _tree.Match(d.DestinationId, blocks)).ToList();
            var best = matches.Max();
            if (blocks.Count > 0 && (double)best / blocks.Count > CacheThreshold)
            {
                chosen = candidates[matches.IndexOf(best)];
                reason = RouteReasons.Affinity;
            }
            else
            {
                chosen = candidates.MinBy(d => _tree.Size(d.DestinationId))!;
                reason = RouteReasons.Load;
            }
        }

        _tree.Insert(chosen.DestinationId, blocks);
        return PeerSignals.Chosen(context, chosen, reason);
    }
}
