using GpuFleet.Gateway.Load;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing.Peers;

/// <summary>
/// What the benchmark baselines read, from the same sources as GpuFleet's policy (the workers' load reports, this
/// gateway's in-flight counts and the affinity lookup), so that only the decision differs between policies.
/// </summary>
internal sealed class PeerSignals(WorkerLoadBoard board, WorkerTraffic traffic)
{
    /// <summary>
    /// The destinations this attempt may use, in a stable order: what YARP offers, which the failover stage (FailoverMiddleware) has
    /// already narrowed to the workers the request has not tried.
    /// </summary>
    public static List<DestinationState> Candidates(IReadOnlyList<DestinationState> available)
    {
        ArgumentNullException.ThrowIfNull(available);
        return [.. available.OrderBy(d => d.DestinationId, StringComparer.Ordinal)];
    }

    /// <summary>Requests at the worker: running + queued from its fresh report plus those sent since; this gateway's in-flight count without one.</summary>
    public int Outstanding(string destination)
    {
        var load = board.Get(destination);
        if (load?.Status?.Engine is { } engine && !board.IsStale(load))
        {
            return traffic.Outstanding(destination, engine, load.ReceivedAt).Requests;
        }

        return traffic.InFlight(destination);
    }

    /// <summary>Requests waiting at the worker (its queue) plus those sent since its report.</summary>
    public int Waiting(string destination)
    {
        var load = board.Get(destination);
        if (load?.Status?.Engine is { } engine && !board.IsStale(load))
        {
            var estimate = traffic.Outstanding(destination, engine, load.ReceivedAt);
            return (int)engine.QueueDepth + estimate.Unreported;
        }

        return traffic.InFlight(destination);
    }

    /// <summary>This gateway's own count of requests in flight to the worker (what a router that reads no worker metrics knows).</summary>
    public int InFlight(string destination) => traffic.InFlight(destination);

    /// <summary>Share of the worker's KV cells in use, 0 without a report.</summary>
    public double KvUtilisation(string destination)
    {
        var engine = board.Get(destination)?.Status?.Engine;
        return engine is null || engine.KvTokensTotal == 0 ? 0 : Math.Min(1, (double)engine.KvTokensUsed / engine.KvTokensTotal);
    }

    /// <summary>Leading prompt blocks the worker holds per the affinity index (gateway records corrected by worker reports).</summary>
    public static int HeldBlocks(HttpContext context, string destination)
    {
        ArgumentNullException.ThrowIfNull(context);
        var inspected = context.Features.Get<InspectedRequestFeature>();
        return inspected is not null && inspected.Affinity.HeldBlocks.TryGetValue(destination, out var held) ? held : 0;
    }

    /// <summary>The request's prefix blocks (empty when it has no prompt the gateway could read).</summary>
    public static IReadOnlyList<ulong> Blocks(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Features.Get<InspectedRequestFeature>()?.Request?.Blocks ?? [];
    }

    /// <summary>Records the choice's reason (<see cref="RouteChoiceFeature"/>) where the response header and metrics read it.</summary>
    public static DestinationState Chosen(HttpContext context, DestinationState destination, string reason)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Features.Set(new RouteChoiceFeature { Reason = reason });
        return destination;
    }
}
