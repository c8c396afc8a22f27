using GpuFleet.Gateway.Routing.Peers;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing;

/// <summary>
/// The policy the worker clusters name: it hands every pick to the one chosen by <see cref="RoutingOptions.Policy"/>,
/// GpuFleet's <see cref="TimeToFirstTokenPolicy"/> by default. The others (Peers/) are the anchors' policies, kept as
/// benchmark baselines so that routing quality is compared through the same gateway (bench: <c>routing</c>).
/// </summary>
internal sealed class ConfiguredRoutingPolicy : ILoadBalancingPolicy
{
    public const string PolicyName = "GpuFleetRouting";

    /// <summary>Every selectable policy name, GpuFleet's first.</summary>
    public static readonly IReadOnlyList<string> Names =
    [
        RoutingOptions.DefaultPolicy, RoundRobinPolicy.PolicyName, LeastQueuePolicy.PolicyName, PrefixOnlyPolicy.PolicyName,
        SglangCacheAwarePolicy.PolicyName, AibrixPrefixCachePolicy.PolicyName, LlmdWeightedScorerPolicy.PolicyName,
    ];

    private readonly ILoadBalancingPolicy _selected;

    public ConfiguredRoutingPolicy(RoutingOptions options, TimeToFirstTokenPolicy ours, PeerSignals signals)
    {
        ArgumentNullException.ThrowIfNull(options);
        _selected = options.Policy switch
        {
            RoundRobinPolicy.PolicyName => new RoundRobinPolicy(),
            LeastQueuePolicy.PolicyName => new LeastQueuePolicy(signals),
            PrefixOnlyPolicy.PolicyName => new PrefixOnlyPolicy(),
            SglangCacheAwarePolicy.PolicyName => new SglangCacheAwarePolicy(signals),
            AibrixPrefixCachePolicy.PolicyName => new AibrixPrefixCachePolicy(signals),
            LlmdWeightedScorerPolicy.PolicyName => new LlmdWeightedScorerPolicy(signals),
            _ => ours,
        };
    }

    public string Name => PolicyName;

    /// <summary>The policy that decides.</summary>
    public ILoadBalancingPolicy Selected => _selected;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations) =>
        _selected.PickDestination(context, cluster, availableDestinations);
}
