using GpuFleet.Gateway.Load;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Routing;

/// <summary>
/// GpuFleet's YARP load-balancing policy: each candidate's expected time to first token is
/// <c>slot wait + prefill backlog / prefill rate + (prompt tokens − tokens it holds) / prefill rate</c>, from the worker's
/// last report plus what this gateway sent it since, with one prefill rate for the cluster. A later turn goes where the estimate
/// is lowest (usually the worker holding its history); a new conversation only to a worker about as loaded as the least
/// loaded one (the lowest estimate among those, so a shared prefix held there counts), and when nothing held makes a
/// difference, among workers about as fast, to the one holding the least cached work. A session's worker, and a later
/// turn's holder, lose only when they are a hot spot (the session to the least loaded worker, the turn to the best estimate
/// among the workers that are not hot). A worker whose
/// context clearly cannot hold the prompt is skipped; one returning from a passive-health ejection counts a rising share
/// of its slots. See docs/gateway-routing.md ("Routing policy").
/// </summary>
internal sealed class TimeToFirstTokenPolicy(WorkerLoadBoard board, WorkerTraffic traffic, RoutingOptions options, BytesPerToken calibration, WorkerEjections ejections)
    : ILoadBalancingPolicy
{
    public const string PolicyName = "GpuFleetTimeToFirstToken";

    // Shares of KV and host cache in use closer than this are equal: a few generated tokens more or less is noise,
    // and equal workers take turns (least recently chosen first).
    private const double CacheFillTolerance = 0.05;

    public string Name => PolicyName;

    public DestinationState? PickDestination(HttpContext context, ClusterState cluster, IReadOnlyList<DestinationState> availableDestinations)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(availableDestinations);
        var inspected = context.Features.Get<InspectedRequestFeature>();
        // The failover stage (FailoverMiddleware) hands over only the workers this request has not tried yet.
        var candidates = availableDestinations.ToList();
        if (candidates.Count == 0)
        {
            return null;
        }

        // A worker whose context clearly cannot hold the prompt is no candidate. When none can, the one with the largest
        // context gets it and answers precisely: the gateway never refuses on an estimate.
        var fitting = candidates.Where(d => Fits(d.DestinationId, inspected)).ToList();
        if (fitting.Count == 0)
        {
            var largest = candidates.OrderByDescending(d => ContextPerSlot(d.DestinationId))
                .ThenBy(d => d.Health.Passive == DestinationHealth.Unhealthy).First();
            return Record(context, new Choice(Score(largest, inspected, FleetPrefillRate(candidates)), RouteReasons.Context));
        }

        candidates = fitting;

        // Workers a connection just failed to (passive health) are used only when nothing else is left.
        var healthy = candidates.Where(d => d.Health.Passive != DestinationHealth.Unhealthy).ToList();
        if (healthy.Count > 0)
        {
            candidates = healthy;
        }

        var prefillRate = FleetPrefillRate(candidates);
        var scored = candidates.Select(d => Score(d, inspected, prefillRate)).ToList();
        var live = scored.Where(s => s.Live).ToList();
        var choice = live.Count == 0 ? new Choice(scored.MinBy(s => s.Outstanding)!, RouteReasons.Fallback) : Choose(live, inspected);
        return Record(context, choice);
    }

    /// <summary>
    /// One prefill rate for every candidate: the highest any of them reported (the default before any did). A worker
    /// reports its prefill throughput over the last 10 s, which reads low on a worker that was idle and highest on the
    /// busiest one, so comparing workers by their own figure would let recent traffic, not the prefix they hold or the
    /// work they have, decide: a later turn would leave the worker holding it, new conversations would follow the
    /// busiest worker. The workers of one cluster serve the same model, so their speeds are taken as equal.
    /// </summary>
    private double FleetPrefillRate(List<DestinationState> candidates) =>
        candidates.Select(d => traffic.KnownPrefillRate(d.DestinationId, board.Get(d.DestinationId)?.Status?.Engine?.PrefillTokensPerSecond ?? 0)).Max()
            ?? options.DefaultPrefillTokensPerSecond;

    /// <summary>The policy's part of the request's state: this attempt's choice, for the stages after it.</summary>
    private static DestinationState Record(HttpContext context, Choice choice)
    {
        context.Features.Set(new RouteChoiceFeature
        {
            Reason = choice.Reason,
            HeldBlocks = choice.Candidate.HeldBlocks,
            PrefillTokens = choice.Candidate.PrefillTokens,
            AwaitedTokens = choice.Candidate.AwaitedTokens,
        });
        return choice.Candidate.Destination;
    }

    /// <summary>
    /// Only a clearly oversized prompt excludes a worker: estimated tokens over <see cref="RoutingOptions.ContextFitMargin"/>
    /// times its context. Unknown context (no status yet, or 0) never excludes. A stale status still counts: the
    /// context is the worker's configuration, not its load.
    /// </summary>
    private bool Fits(string destination, InspectedRequestFeature? inspected)
    {
        var context = ContextPerSlot(destination);
        return context == 0 || inspected is null || inspected.PromptTokens <= options.ContextFitMargin * context;
    }

    private uint ContextPerSlot(string destination) => board.Get(destination)?.Status?.Engine?.ContextPerSlot ?? 0;

    private Choice Choose(List<Candidate> live, InspectedRequestFeature? inspected)
    {
        var leastLoaded = live.MinBy(c => c.Load)!;
        if (options.SessionStickiness && inspected?.Affinity.SessionWorker is { } sticky
            && live.FirstOrDefault(c => c.Destination.DestinationId == sticky) is { } session
            && !IsHot(session, leastLoaded))
        {
            return new Choice(session, RouteReasons.Session);
        }

        // A later turn of a conversation whose previous turn a worker still holds: the estimate decides, since moving it
        // re-prefills the whole history elsewhere and takes the conversation's next turns along. Only a hot spot loses it,
        // to the best estimate among the workers that are not hot (one holding its tools and system prompt re-prefills
        // less): the estimate's slot wait is the mean duration of this gateway's requests there, and work the worker got
        // elsewhere (another gateway, longer answers) can make its queue far longer than that.
        if (live.Any(c => c.HoldsHistory))
        {
            var next = live.MinBy(c => (c.Seconds, c.Load))!;
            if (next.HeldBlocks > 0 && IsHot(next, leastLoaded))
            {
                var cool = live.Where(c => c.Load < options.HotSpotLoad).ToList();
                return Reasoned(cool.MinBy(c => (c.Seconds, c.Load))!, cool);
            }

            return Reasoned(next, live);
        }

        // A new conversation (or one no worker holds any more) commits a worker to its later turns as well, so it goes
        // only to a worker about as loaded as the least loaded one; among those, one holding a shared prefix (a system
        // prompt, tool schemas) wins by its estimate. Without this, every agent sharing a system prompt would queue at
        // the workers holding it for as long as their wait stays below the prompt's prefill time: the hot-spot trap.
        var balanced = live.Where(c => c.Load <= leastLoaded.Load + options.NewConversationLoadMargin).ToList();
        var best = balanced.MinBy(c => (c.Seconds, c.Load))!;
        if (best.HeldBlocks > 0)
        {
            return Reasoned(best, balanced);
        }

        // Nothing held made the difference: among the workers that would serve it about as fast, the one with the least
        // cached work loses the least to it, and exact ties go to the one chosen longest ago. Holders are left out, so
        // affinity is as strong as without this.
        var tolerance = Math.Max(options.SpreadTolerance.TotalSeconds, best.Seconds * options.SpreadToleranceRatio);
        var similar = balanced.Where(c => c.HeldBlocks == 0 && c.Seconds <= best.Seconds + tolerance).ToList();
        var least = similar.Min(c => (c.CachedBlocks, c.Load));
        similar.RemoveAll(c => (c.CachedBlocks, c.Load) != least);
        var leastFill = similar.Min(c => c.CacheFill);
        var spread = similar.Where(c => c.CacheFill <= leastFill + CacheFillTolerance).MinBy(c => c.LastSentAt)!;
        return new Choice(spread, RouteReasons.Load);
    }

    /// <summary>Affinity when the prefix the chosen worker holds is what made it win against the workers that hold none.</summary>
    private static Choice Reasoned(Candidate chosen, List<Candidate> among)
    {
        var bestCold = among.Where(c => c.HeldBlocks == 0).Select(c => (double?)c.Seconds).Min();
        var reason = chosen.HeldBlocks > 0 && (bestCold is null || bestCold > chosen.Seconds) ? RouteReasons.Affinity : RouteReasons.Load;
        return new Choice(chosen, reason);
    }

    private bool IsHot(Candidate candidate, Candidate leastLoaded) =>
        candidate.Load >= options.HotSpotLoad && leastLoaded.Load < options.HotSpotLoad && !ReferenceEquals(candidate, leastLoaded);

    private Candidate Score(DestinationState destination, InspectedRequestFeature? inspected, double prefillRate)
    {
        var id = destination.DestinationId;
        var load = board.Get(id);
        var status = load?.Status?.Engine;
        var promptTokens = inspected?.PromptTokens ?? 0;
        var fresh = load is not null && status is not null && !board.IsStale(load);
        if (!fresh)
        {
            var inFlight = traffic.InFlight(id);
            return new Candidate(destination, Live: false, double.MaxValue, 0, HoldsHistory: false, promptTokens, 0, inFlight, inFlight, 0, 0, 0);
        }

        // A worker returning from an ejection is given a rising share of its slots (slow start).
        var slots = Math.Max(1, (int)(status!.TotalSlots * ejections.Share(id)));
        var request = inspected?.Request;
        var held = request is not null && inspected!.Affinity.HeldBlocks.TryGetValue(id, out var blocks) ? Math.Max(0, blocks) : 0;
        var tokensPerBlock = request is null ? 0 : calibration.TokensPerBlock(request.Model);
        var heldTokens = Math.Min(promptTokens, (int)(held * tokensPerBlock));
        // Held blocks that a running prefill there is still computing (another conversation with the same system prompt
        // and tools, sent just before): this prompt reuses them only once that prefill has computed them, so they cost
        // about the time to prefill them, though not the work. Without this, conversations follow a worker still
        // prefilling their shared prefix and wait there longer than a worker holding nothing would take.
        var prefilling = load!.PrefillingBlocks;
        var awaitedTokens = held > 0 && prefilling.Count > 0
            ? Math.Min(heldTokens, (int)(request!.Blocks.Take(held).Count(prefilling.Contains) * tokensPerBlock))
            : 0;
        // It served the previous turn when it holds every full block before the last assistant message (one block of slack
        // for a rendering that differs at the edge; a chain longer than the hashed blocks counts up to those).
        var historyBlocks = request is null ? 0 : Math.Min(request.HistoryBytes / options.BlockBytes, request.Blocks.Count);
        var holdsHistory = historyBlocks > 0 && held > 0 && held >= historyBlocks - 1;
        var requestSeconds = (traffic.MeanDuration(id) ?? options.DefaultRequestDuration).TotalSeconds;
        var prefillTokens = Math.Max(0, promptTokens - heldTokens);
        var (outstanding, _, _, prefillAhead) = traffic.Outstanding(id, status, load.ReceivedAt, prefillTokens);
        // Requests beyond the slots wait for slots to free: about one mean request duration per batch of slots ahead.
        var slotWait = outstanding >= slots ? (double)(outstanding - slots + 1) / slots * requestSeconds : 0;
        // The prefill it waits for there: the worker's shortest-first order lets a short prompt pass longer ones.
        var backlog = prefillAhead / prefillRate;
        var prefill = (prefillTokens + awaitedTokens) / prefillRate;
        // Cached work: the blocks it reported holding plus those this gateway sent it since (the report lags).
        var (sentBlocks, lastSentAt) = traffic.SentBlocksSince(id, load.ReceivedAt);
        var cacheFill = Fraction(status.KvTokensUsed, status.KvTokensTotal) + Fraction(status.HostCacheBytes, status.HostCacheCapacityBytes);
        return new Candidate(destination, Live: true, slotWait + backlog + prefill, held, holdsHistory, prefillTokens, awaitedTokens, outstanding, (double)outstanding / slots,
            status.HeldPrefixBlocks.Count + sentBlocks, cacheFill, lastSentAt);
    }

    private static double Fraction(ulong used, ulong total) => total == 0 ? 0 : Math.Min(1, (double)used / total);

    /// <summary>
    /// One worker's score: expected seconds to first token, prompt blocks it holds (and whether they cover the conversation's
    /// previous turn), tokens it would prefill and held tokens a running prefill there has yet to compute, its load, and for
    /// new conversations the cached work it holds (blocks; share of KV and host cache in use) and its last send.
    /// </summary>
    private sealed record Candidate(DestinationState Destination, bool Live, double Seconds, int HeldBlocks, bool HoldsHistory, int PrefillTokens,
        int AwaitedTokens, int Outstanding, double Load,
        int CachedBlocks, double CacheFill, long LastSentAt);

    private sealed record Choice(Candidate Candidate, string Reason);
}
