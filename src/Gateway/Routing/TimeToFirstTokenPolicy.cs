using GpuFleet.Gateway.Load;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing;

/// <summary>
/// GpuFleet's YARP load-balancing policy: each candidate's expected time to first token is
/// <c>slot wait + prefill backlog / prefill rate + (prompt tokens − tokens it holds) / prefill rate</c>, from the worker's
/// last report plus what this gateway sent it since, and the minimum wins. A session's worker wins while it is not
/// a hot spot; the hot-spot guard gives an overloaded affinity choice's request to the least loaded worker instead.
/// See docs/gateway.md ("Routing policy").
/// </summary>
public sealed class TimeToFirstTokenPolicy(WorkerLoadBoard board, WorkerTraffic traffic, RoutingOptions options, BytesPerToken calibration) : ILoadBalancingPolicy
{
    public const string PolicyName = "GpuFleetTimeToFirstToken";

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(availableDestinations);
        var routing = context.Features.Get<RoutingState>();
        var candidates = availableDestinations.Where(d => routing is null || !routing.Tried.Contains(d.DestinationId)).ToList();
        if (candidates.Count == 0)
        {
            return null;
        }

        // Workers a connection just failed to (passive health) are used only when nothing else is left.
        var healthy = candidates.Where(d => d.Health.Passive != DestinationHealth.Unhealthy).ToList();
        if (healthy.Count > 0)
        {
            candidates = healthy;
        }

        // Each worker's measured prefill rate, read once per decision (it also remembers the last one a worker reported).
        var rates = candidates.Select(d => traffic.KnownPrefillRate(d.DestinationId, board.Get(d.DestinationId)?.Status?.Engine?.PrefillTokensPerSecond ?? 0)).ToList();
        var fleetPrefillRate = rates.Max() ?? options.DefaultPrefillTokensPerSecond;
        // A worker that has not measured its rate yet is assumed as fast as the fastest known one (same model), so an
        // unmeasured idle worker is not favoured over the one holding the prefix just because its rate is unknown.
        var scored = candidates.Select((d, i) => Score(d, routing, rates[i] ?? fleetPrefillRate)).ToList();
        var live = scored.Where(s => s.Live).ToList();
        Choice choice;
        if (live.Count == 0)
        {
            choice = new Choice(scored.MinBy(s => s.Outstanding)!, RouteReasons.Fallback);
        }
        else
        {
            choice = Choose(live, routing);
        }

        if (routing is not null)
        {
            routing.Reason = choice.Reason;
            // No live report (fallback): no estimate either.
            routing.Estimate = choice.Candidate.Live ? TimeSpan.FromSeconds(choice.Candidate.Seconds) : TimeSpan.Zero;
            routing.ChosenHeldBlocks = choice.Candidate.HeldBlocks;
        }

        return choice.Candidate.Destination;
    }

    private Choice Choose(List<Candidate> live, RoutingState? routing)
    {
        var leastLoaded = live.MinBy(c => c.Load)!;
        if (options.SessionStickiness && routing?.Affinity.SessionWorker is { } sticky
            && live.FirstOrDefault(c => c.Destination.DestinationId == sticky) is { } session
            && !IsHot(session, leastLoaded))
        {
            return new Choice(session, RouteReasons.Session);
        }

        var best = live.MinBy(c => (c.Seconds, c.Load))!;
        if (best.HeldBlocks > 0 && IsHot(best, leastLoaded))
        {
            return new Choice(leastLoaded, RouteReasons.Load);
        }

        // Affinity only when the prefix it holds is what made it win.
        var bestCold = live.Where(c => c.HeldBlocks == 0).Select(c => (double?)c.Seconds).Min();
        var reason = best.HeldBlocks > 0 && (bestCold is null || bestCold > best.Seconds) ? RouteReasons.Affinity : RouteReasons.Load;
        return new Choice(best, reason);
    }

    private bool IsHot(Candidate candidate, Candidate leastLoaded) =>
        candidate.Load >= options.HotSpotLoad && leastLoaded.Load < options.HotSpotLoad && !ReferenceEquals(candidate, leastLoaded);

    private Candidate Score(DestinationState destination, RoutingState? routing, double prefillRate)
    {
        var id = destination.DestinationId;
        var load = board.Get(id);
        var status = load?.Status?.Engine;
        var fresh = load is not null && status is not null && !board.IsStale(load);
        if (!fresh)
        {
            var inFlight = traffic.InFlight(id);
            return new Candidate(destination, Live: false, double.MaxValue, 0, inFlight, inFlight);
        }

        var slots = Math.Max(1, (int)status!.TotalSlots);
        var (outstanding, unreported, pendingPrefill) = traffic.Outstanding(id, status, load!.ReceivedAt);
        var promptTokens = routing?.PromptTokens ?? 0;
        var held = 0;
        if (routing?.Request is { } request && routing.Affinity.HeldBlocks.TryGetValue(id, out var blocks) && blocks > 0)
        {
            held = blocks;
        }

        var heldTokens = routing?.Request is { } r ? Math.Min(promptTokens, (int)(held * calibration.TokensPerBlock(r.Model))) : 0;
        var requestSeconds = (traffic.MeanDuration(id) ?? options.DefaultRequestDuration).TotalSeconds;
        // Requests beyond the slots wait for slots to free: about one mean request duration per batch of slots ahead.
        var slotWait = outstanding >= slots ? (double)(outstanding - slots + 1) / slots * requestSeconds : 0;
        var backlog = (pendingPrefill + ((double)unreported * promptTokens)) / prefillRate;
        var prefill = Math.Max(0, promptTokens - heldTokens) / prefillRate;
        return new Candidate(destination, Live: true, slotWait + backlog + prefill, held, outstanding, (double)outstanding / slots);
    }

    private sealed record Candidate(DestinationState Destination, bool Live, double Seconds, int HeldBlocks, int Outstanding, double Load);

    private sealed record Choice(Candidate Candidate, string Reason);
}
