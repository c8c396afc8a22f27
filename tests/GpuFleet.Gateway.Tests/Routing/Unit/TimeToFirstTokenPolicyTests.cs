using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Testing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>The YARP policy that picks the worker with the earliest expected first token, on virtual time.</summary>
public sealed class TimeToFirstTokenPolicyTests
{
    private const string Model = "m";
    private readonly ManualTimeProvider _clock = new();
    private readonly RoutingOptions _options = new();
    private readonly WorkerLoadBoard _board;
    private readonly WorkerTraffic _traffic;
    private readonly TimeToFirstTokenPolicy _policy;
    private readonly WorkerEjections _ejections;
    private readonly ClusterState _cluster = new("workers");
    private readonly DestinationState[] _destinations = [new("w1"), new("w2"), new("w3")];

    private string? PickId(HttpContext context, IEnumerable<DestinationState> destinations) =>
        _policy.PickDestination(context, _cluster, [.. destinations])?.DestinationId;

    public TimeToFirstTokenPolicyTests()
    {
        _board = new WorkerLoadBoard(_clock);
        _traffic = new WorkerTraffic(_clock);
        _ejections = new WorkerEjections(new PassiveHealthOptions(), _clock);
        _policy = new TimeToFirstTokenPolicy(_board, _traffic, _options, new BytesPerToken(_options), _ejections);
    }

    private void Report(string worker, uint running = 0, uint queued = 0, uint slots = 4, double prefillRate = 1000, ulong pendingPrefill = 0,
        uint context = 0, int heldBlocks = 0, ulong kvUsed = 0, IEnumerable<ulong>? prefillingBlocks = null)
    {
        var engine = new EngineStatus
        {
            TotalSlots = slots,
            RunningSlots = running,
            FreeSlots = slots - Math.Min(slots, running),
            QueueDepth = queued,
            QueueCapacity = 16,
            PrefillTokensPerSecond = prefillRate,
            PendingPrefillTokens = pendingPrefill,
            ContextPerSlot = context,
            KvTokensUsed = kvUsed,
            KvTokensTotal = 32_768,
        };
        engine.HeldPrefixBlocks.AddRange(Enumerable.Range(1, heldBlocks).Select(i => (ulong)(i + (1000 * worker[^1]))));
        engine.PrefillingPrefixBlocks.AddRange(prefillingBlocks ?? []);
        _board.Update(worker, new WorkerStatus { Name = worker, Model = Model, Ready = true, Engine = engine });
    }

    private void ReportIdle()
    {
        foreach (var destination in _destinations)
        {
            Report(destination.DestinationId);
        }
    }

    /// <summary>
    /// A prompt of <paramref name="promptTokens"/> tokens (4 bytes each, 256 per 1 KiB block) held as given; a later turn
    /// when <paramref name="historyTokens"/> (the tokens before its last assistant message) is given.
    /// </summary>
    private static InspectedRequestFeature Routing(int promptTokens, Dictionary<string, int>? held = null, string? session = null, int historyTokens = 0)
    {
        var blocks = promptTokens * 4 / 1024;
        return new InspectedRequestFeature
        {
            Request = new InspectedRequest
            {
                Model = Model,
                PromptBytes = promptTokens * 4L,
                HistoryBytes = historyTokens * 4L,
                Blocks = [.. Enumerable.Range(1, blocks).Select(i => (ulong)i)],
                SessionKey = session is null ? null : "tag-" + session,
            },
            PromptTokens = promptTokens,
            Affinity = new AffinityLookup(held ?? [], session),
        };
    }

    /// <summary>The worker picked for the request, and the policy's record of why (what the route header and metrics show).</summary>
    private (string? Worker, RouteChoiceFeature Choice) Pick(InspectedRequestFeature routing, IEnumerable<DestinationState>? destinations = null)
    {
        var context = new DefaultHttpContext();
        context.Features.Set(routing);
        return (PickId(context, destinations ?? _destinations), context.Features.Get<RouteChoiceFeature>()!);
    }

    [Fact]
    public void Among_idle_workers_the_one_holding_the_prefix_wins_by_affinity()
    {
        ReportIdle();
        var (worker, choice) = Pick(Routing(2000, new() { ["w2"] = 7 }));
        Assert.Equal("w2", worker);
        Assert.Equal(RouteReasons.Affinity, choice.Reason);
        Assert.Equal(7, choice.HeldBlocks);
        Assert.Equal(2000 - (7 * 256), choice.PrefillTokens);

        // Holding part of it is still worth the most; holding more beats holding less.
        Assert.Equal("w3", Pick(Routing(2000, new() { ["w3"] = 1 })).Worker);
        Assert.Equal("w1", Pick(Routing(2000, new() { ["w1"] = 5, ["w3"] = 2 })).Worker);
        Assert.Equal(RouteReasons.Affinity, Pick(Routing(2000, new() { ["w3"] = 1 })).Choice.Reason);
    }

    [Fact]
    public void Held_blocks_that_a_running_prefill_is_still_computing_count_the_time_to_compute_them()
    {
        ReportIdle();
        // w1 was just sent another conversation with the same 29-block system prompt and tools (an 8,000-token prompt,
        // 31 blocks): it claims them all, and its prefill has computed none yet.
        Report("w1", running: 1, pendingPrefill: 7_424, prefillingBlocks: [.. Enumerable.Range(1, 29).Select(i => (ulong)i)]);
        var held = new Dictionary<string, int> { ["w1"] = 29 };

        // Waiting there for all 7,424 tokens plus its own 576 is slower than prefilling all 8,000 on an idle worker.
        var (worker, choice) = Pick(Routing(8000, held));
        Assert.NotEqual("w1", worker);
        Assert.Equal(RouteReasons.Load, choice.Reason);
        Assert.Equal(0, choice.AwaitedTokens);

        // Once it has computed 19 of them, waiting for the other ten (2,560 tokens) is the faster way.
        Report("w1", running: 1, pendingPrefill: 3_136, prefillingBlocks: [.. Enumerable.Range(20, 10).Select(i => (ulong)i)]);
        (worker, choice) = Pick(Routing(8000, held));
        Assert.Equal("w1", worker);
        Assert.Equal(RouteReasons.Affinity, choice.Reason);
        Assert.Equal(576, choice.PrefillTokens);
        Assert.Equal(2_560, choice.AwaitedTokens);
    }

    [Fact]
    public void A_worker_back_from_an_ejection_counts_a_rising_share_of_its_slots()
    {
        Report("w1", running: 3, slots: 16);
        Report("w2", running: 1, slots: 16);
        var fresh = _destinations[..2];
        Assert.Equal("w2", Pick(Routing(400), fresh).Worker); // the less loaded

        for (var i = 0; i < 3; i++)
        {
            _ejections.Failed("w2");
        }

        _clock.Advance(TimeSpan.FromSeconds(2)); // back, on a tenth of its 16 slots (one, taken): a new request would queue there
        Assert.Equal("w1", Pick(Routing(400), fresh).Worker);

        _clock.Advance(TimeSpan.FromSeconds(30)); // the slow start is over: all 16 slots count again
        Report("w1", running: 3, slots: 16);
        Report("w2", running: 1, slots: 16);
        Assert.Equal("w2", Pick(Routing(400), fresh).Worker);
    }

    [Fact]
    public void Without_any_prefix_held_the_least_loaded_worker_wins_by_load()
    {
        Report("w1", running: 2);
        Report("w2", running: 1);
        Report("w3", running: 3);
        var (worker, choice) = Pick(Routing(2000));
        Assert.Equal("w2", worker);
        Assert.Equal(RouteReasons.Load, choice.Reason);
        Assert.Equal(0, choice.HeldBlocks);
        Assert.Equal(2000, choice.PrefillTokens);

        // Full workers: the next request waits for a slot, a quarter of the (default 10 s) mean duration per request ahead on 4 slots.
        Report("w1", running: 4, queued: 1);
        Report("w2", running: 4, queued: 0);
        Report("w3", running: 4, queued: 2);
        Assert.Equal("w2", Pick(Routing(400)).Worker);

        // That is 2.5 s on w2, plus 4 s of prefill: a worker with one request and 2.6 s of prefill backlog is later, one with
        // 2.4 s earlier (with the new-conversation load margin wide enough to keep the full w2 a candidate, so the estimate
        // alone decides).
        _options.NewConversationLoadMargin = 2;
        _options.SpreadTolerance = TimeSpan.Zero;
        _options.SpreadToleranceRatio = 0;
        Report("w1", running: 1, pendingPrefill: 2600);
        Assert.Equal("w2", Pick(Routing(4000)).Worker);
        Report("w1", running: 1, pendingPrefill: 2400);
        Assert.Equal("w1", Pick(Routing(4000)).Worker);
    }

    [Fact]
    public void A_new_conversation_goes_to_a_holder_of_its_shared_prefix_only_while_it_is_about_as_loaded_as_the_least_loaded_worker()
    {
        // A 100k-token first turn whose first 390 blocks (a shared system prompt) w1 holds: re-prefilling them elsewhere
        // takes about 100 s, so w1 has the best estimate however loaded it is. But the conversation's later turns would
        // follow, so with 6 outstanding on 4 slots (load 1.5 against 0) it goes to the least loaded worker.
        Report("w1", running: 4, queued: 2);
        Report("w2", running: 1);
        Report("w3");
        var (worker, choice) = Pick(Routing(100_000, new() { ["w1"] = 390 }));
        Assert.Equal("w3", worker);
        Assert.Equal(RouteReasons.Load, choice.Reason);
        Assert.Equal(0, choice.HeldBlocks);

        // Within the margin (half a worker's slots more than the least loaded) the holder keeps it.
        Report("w1", running: 2);
        var (kept, keptChoice) = Pick(Routing(100_000, new() { ["w1"] = 390 }));
        Assert.Equal("w1", kept);
        Assert.Equal(RouteReasons.Affinity, keptChoice.Reason);
        Assert.Equal(390, keptChoice.HeldBlocks);

        // Among the workers within the margin the one holding it wins, even when the least loaded holds nothing.
        Report("w1", running: 4, queued: 5);
        Report("w2", running: 4, queued: 3);
        Report("w3", running: 4, queued: 2);
        Assert.Equal(("w2", RouteReasons.Affinity), Reasoned(Pick(Routing(100_000, new() { ["w2"] = 390 }))));
        Assert.Equal(("w3", RouteReasons.Load), Reasoned(Pick(Routing(100_000, new() { ["w1"] = 390 }))));

        // With no margin, only the least loaded are candidates.
        _options.NewConversationLoadMargin = 0;
        Assert.Equal(("w3", RouteReasons.Load), Reasoned(Pick(Routing(100_000, new() { ["w2"] = 390 }))));
    }

    [Fact]
    public void A_later_turn_stays_with_the_worker_holding_its_history_beyond_the_new_conversation_margin_until_it_is_a_hot_spot()
    {
        // The history (all but the last 500 tokens) is on w1, loaded at 1.25 against idle workers: beyond the margin a new
        // conversation keeps, but a 1.25 s slot wait beats re-prefilling 100k tokens elsewhere.
        Report("w1", running: 4, queued: 1);
        Report("w2");
        Report("w3");
        var history = new Dictionary<string, int> { ["w1"] = 388 };
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing(100_000, history, historyTokens: 99_500))));

        // Holding only a shared prefix of it (less than the history) is no later turn: placed like a new conversation.
        Assert.Equal(("w2", RouteReasons.Load), Reasoned(Pick(Routing(100_000, new() { ["w1"] = 100 }, historyTokens: 99_500))));

        // A hot spot (1.5 times its slots) loses the turn to the least loaded worker, whatever the estimate says: its
        // queue may hold work this gateway did not send and cannot time.
        Report("w1", running: 4, queued: 2);
        Assert.Equal(("w2", RouteReasons.Load), Reasoned(Pick(Routing(100_000, history, historyTokens: 99_500))));

        // Moved off a hot spot, the turn goes to the best estimate among the workers that are not hot: one holding its
        // shared prefix (tools, system prompt) beats an idle one holding nothing, though busier.
        Report("w3", running: 2);
        var shared = new Dictionary<string, int> { ["w1"] = 388, ["w3"] = 300 };
        Assert.Equal(("w3", RouteReasons.Affinity), Reasoned(Pick(Routing(100_000, shared, historyTokens: 99_500))));
        Report("w3");

        // A short conversation whose holder queues longer than re-prefilling it takes: the estimate moves it before that.
        Report("w1", running: 4, queued: 1);
        Assert.Equal(("w2", RouteReasons.Load), Reasoned(Pick(Routing(2000, new() { ["w1"] = 6 }, historyTokens: 1600))));
    }

    [Fact]
    public void The_session_worker_wins_unless_it_is_a_hot_spot()
    {
        ReportIdle();
        var held = new Dictionary<string, int> { ["w1"] = 7 };
        Assert.Equal(("w3", RouteReasons.Session), Reasoned(Pick(Routing(2000, held, session: "w3"))));

        Report("w3", running: 4, queued: 2);
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing(2000, held, session: "w3"))));

        // A session worker that is not offered (gone, or tried already) is ignored.
        Report("w3");
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing(2000, held, session: "w3"), _destinations[..2])));
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing(2000, held, session: "w9"))));
    }

    [Fact]
    public void Without_session_stickiness_the_session_is_ignored()
    {
        _options.SessionStickiness = false;
        ReportIdle();
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing(2000, new() { ["w1"] = 7 }, session: "w3"))));
    }

    [Fact]
    public void Only_the_workers_offered_are_picked()
    {
        // A retry is offered the workers it has not tried (the failover stage narrows YARP's list): the best of those wins.
        ReportIdle();
        var routing = Routing(2000, new() { ["w1"] = 7, ["w2"] = 6 });
        Assert.Equal("w1", Pick(routing).Worker);
        Assert.Equal("w2", Pick(routing, _destinations[1..]).Worker);
        Assert.Equal("w3", Pick(routing, _destinations[2..]).Worker);
        Assert.Null(Pick(Routing(10), []).Worker);
    }

    [Fact]
    public void A_worker_marked_unhealthy_by_passive_health_is_avoided_while_others_exist()
    {
        ReportIdle();
        var held = new Dictionary<string, int> { ["w1"] = 7 };
        _destinations[0].Health.Passive = DestinationHealth.Unhealthy;
        Assert.NotEqual("w1", Pick(Routing(2000, held)).Worker);

        // Only unhealthy workers left: one of them is still used.
        _destinations[1].Health.Passive = DestinationHealth.Unhealthy;
        _destinations[2].Health.Passive = DestinationHealth.Unhealthy;
        Assert.Equal("w1", Pick(Routing(2000, held)).Worker);

        // YARP reactivates a worker after its cool-down (Unknown): it holds the prefix, so it is chosen again.
        _destinations[0].Health.Passive = DestinationHealth.Unknown;
        _destinations[1].Health.Passive = DestinationHealth.Unknown;
        Assert.Equal("w1", Pick(Routing(2000, held)).Worker);
    }

    [Fact]
    public void A_burst_of_unreported_sends_moves_the_choice_off_the_holder_until_they_end()
    {
        ReportIdle();
        _clock.Advance(TimeSpan.FromMilliseconds(1)); // sends after the reports
        var held = new Dictionary<string, int> { ["w1"] = 7 };
        Assert.Equal("w1", Pick(Routing(2000, held)).Worker);

        var sent = new List<WorkerTraffic.Sent>();
        for (var i = 0; i < 3; i++)
        {
            sent.Add(_traffic.Begin("w1"));
        }

        Assert.Equal(3, _traffic.SentSince("w1", _board.Get("w1")!.ReceivedAt));
        var (worker, choice) = Pick(Routing(2000, held));
        Assert.NotEqual("w1", worker);
        Assert.Equal(RouteReasons.Load, choice.Reason);

        // They end (this gateway saw it after the last report): the holder is first again.
        _clock.Advance(TimeSpan.FromMilliseconds(500));
        sent.ForEach(s => s.Complete());
        Assert.Equal(0, _traffic.InFlight("w1"));
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing(2000, held))));
        Assert.Equal(TimeSpan.FromMilliseconds(500), _traffic.MeanDuration("w1"));
    }

    [Fact]
    public void A_report_older_than_the_last_completed_request_counts_no_running_work()
    {
        var request = _traffic.Begin("w1");
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        Report("w1", running: 4, pendingPrefill: 5000); // taken while our request (and others) ran
        Report("w2");
        Report("w3");
        var held = new Dictionary<string, int> { ["w1"] = 7 };
        Assert.Equal(("w2", RouteReasons.Load), Reasoned(Pick(Routing(2000, held))));

        _clock.Advance(TimeSpan.FromMilliseconds(10));
        request.Dispose();
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing(2000, held))));
    }

    [Fact]
    public void Stale_reports_are_not_scored_and_a_fresh_worker_is_preferred_to_them()
    {
        ReportIdle();
        _clock.Advance(WorkerLoadBoard.StaleAfter);
        Report("w3", running: 4, queued: 3);
        _clock.Advance(TimeSpan.FromTicks(1)); // w1 and w2 are now just past StaleAfter
        Assert.True(_board.IsStale(_board.Get("w1")!));
        Assert.False(_board.IsStale(_board.Get("w3")!));
        Assert.Equal("w3", Pick(Routing(2000, new() { ["w1"] = 7 })).Worker);

        _board.MarkDisconnected("w3");
        Report("w1");
        Assert.Equal("w1", Pick(Routing(2000, new() { ["w3"] = 7 })).Worker);
    }

    [Fact]
    public void With_no_fresh_report_the_worker_with_the_fewest_requests_in_flight_is_chosen_without_routing_state()
    {
        ReportIdle();
        _clock.Advance(WorkerLoadBoard.StaleAfter + TimeSpan.FromTicks(1));
        using var a = _traffic.Begin("w1");
        using var b = _traffic.Begin("w1");
        using var c = _traffic.Begin("w3");

        // Plain traffic (gRPC and other paths) has no inspected request.
        var context = new DefaultHttpContext();
        Assert.Equal("w2", PickId(context, _destinations));
        using var d = _traffic.Begin("w2");
        using var e = _traffic.Begin("w2");
        Assert.Equal("w3", PickId(context, _destinations));
    }

    [Fact]
    public void With_no_fresh_report_the_worker_with_the_fewest_requests_in_flight_is_chosen_by_fallback()
    {
        ReportIdle();
        _clock.Advance(WorkerLoadBoard.StaleAfter + TimeSpan.FromTicks(1));
        using var a = _traffic.Begin("w1");
        using var b = _traffic.Begin("w1");
        using var c = _traffic.Begin("w3");

        var (worker, choice) = Pick(Routing(2000, new() { ["w1"] = 7 }));
        Assert.Equal("w2", worker);
        Assert.Equal(RouteReasons.Fallback, choice.Reason);
    }

    [Fact]
    public void An_unmeasured_worker_is_assumed_as_fast_as_the_fastest_known_one()
    {
        // w2 has not measured its prefill rate yet (reports 0): it is not favoured over the holder because of that.
        Report("w1", prefillRate: 2000);
        Report("w2", prefillRate: 0);
        Report("w3", prefillRate: 500);
        var (worker, choice) = Pick(Routing(4000, new() { ["w1"] = 8 }));
        Assert.Equal("w1", worker);
        Assert.Equal(RouteReasons.Affinity, choice.Reason);
        Assert.Equal(4000 - (8 * 256), choice.PrefillTokens);

        // Nothing held: the unmeasured one is estimated at the fleet's best rate, 2 s like w1, and takes its turn first
        // (at the default rate, 4 s, it would lose to w1).
        Assert.Equal("w2", Pick(Routing(4000), [_destinations[1], _destinations[0]]).Worker);
    }

    [Fact]
    public void New_conversations_sent_one_by_one_to_an_idle_fleet_spread_over_every_worker()
    {
        ReportIdle();
        var chosen = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            // Sequential conversations: each has ended before the next is routed, and no report has come since.
            _clock.Advance(TimeSpan.FromMilliseconds(1));
            var request = Routing(2000);
            var (worker, choice) = Pick(request);
            Assert.Equal(RouteReasons.Load, choice.Reason);
            chosen.Add(worker!);
            _traffic.Begin(worker!, request.Request!.Blocks.Count - choice.HeldBlocks).Complete();
        }

        Assert.Equal(["w1", "w2", "w3", "w1", "w2", "w3"], chosen);
    }

    [Fact]
    public void A_new_conversation_goes_to_the_worker_holding_the_least_cached_work()
    {
        Report("w1", heldBlocks: 12);
        Report("w2", heldBlocks: 3);
        Report("w3", heldBlocks: 7);
        Assert.Equal(("w2", RouteReasons.Load), Reasoned(Pick(Routing(2000))));

        // Blocks this gateway sent since the report count as held: the report cannot list them yet.
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        _traffic.Begin("w2", 7).Complete();
        Assert.Equal("w3", Pick(Routing(2000)).Worker);

        // As many blocks each: the least KV and host cache in use.
        Report("w1", heldBlocks: 4, kvUsed: 9000);
        Report("w2", heldBlocks: 4, kvUsed: 2000);
        Report("w3", heldBlocks: 4, kvUsed: 5000);
        Assert.Equal("w2", Pick(Routing(2000)).Worker);

        // Cache use a few tokens apart is equal: the one chosen longest ago (w1, never) takes it, then w2 (sent to above).
        Report("w1", heldBlocks: 4, kvUsed: 5010);
        Report("w2", heldBlocks: 4, kvUsed: 5000);
        Report("w3", heldBlocks: 4, kvUsed: 5005);
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        _traffic.Begin("w3").Complete();
        Assert.Equal("w1", Pick(Routing(2000)).Worker);
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        _traffic.Begin("w1").Complete();
        Assert.Equal("w2", Pick(Routing(2000)).Worker);
    }

    [Fact]
    public void Spreading_only_chooses_among_workers_about_as_fast_as_the_best()
    {
        // w2 and w3 hold more, but w1 has a prefill backlog of 5 s: it is not "about as fast".
        Report("w1", pendingPrefill: 5000);
        Report("w2", heldBlocks: 20);
        Report("w3", heldBlocks: 30);
        Assert.Equal("w2", Pick(Routing(2000)).Worker);

        // 50 ms of backlog is within the tolerance (100 ms, or 10 % of 2 s): the empty cache wins.
        Report("w1", pendingPrefill: 50);
        Assert.Equal("w1", Pick(Routing(2000)).Worker);

        // With a 20 s prompt 10 % is 2 s: a 1.5 s backlog still counts as about as fast.
        Report("w1", pendingPrefill: 1500);
        Assert.Equal("w1", Pick(Routing(20_000)).Worker);
        Assert.Equal("w2", Pick(Routing(2000)).Worker);

        // Zero tolerance: a millisecond slower is not equal, but exact ties still spread.
        _options.SpreadTolerance = TimeSpan.Zero;
        _options.SpreadToleranceRatio = 0;
        Report("w1", pendingPrefill: 1);
        Assert.Equal("w2", Pick(Routing(2000)).Worker);
        Report("w1", heldBlocks: 9);
        Assert.Equal("w1", Pick(Routing(2000)).Worker);
    }

    [Fact]
    public void Reported_prefill_rates_do_not_draw_new_conversations_to_the_busiest_worker()
    {
        // A worker's reported rate is its recent prefill throughput: the one that served the most reads fastest.
        Report("w1", prefillRate: 4000, heldBlocks: 30);
        Report("w2", prefillRate: 500, heldBlocks: 10);
        Report("w3", prefillRate: 1000, heldBlocks: 20);
        var (worker, choice) = Pick(Routing(4000));
        Assert.Equal(("w2", RouteReasons.Load), (worker, choice.Reason));
        // w2 won as a cold worker about as fast as the others: estimated at the cluster's best rate (1 s), not its own (8 s).

        // A real wait still counts: 1000 tokens of backlog on w2 (0.25 s at 4000 tokens/s) is more than the tolerance.
        Report("w2", prefillRate: 500, heldBlocks: 10, pendingPrefill: 1000);
        Assert.Equal("w3", Pick(Routing(4000)).Worker);
    }

    [Fact]
    public void A_holder_that_was_idle_lately_keeps_the_next_turn_whatever_rate_it_reported()
    {
        // w1 prefilled little in the last 10 s, so it reports a low throughput: it still holds 7 of 7.8 blocks.
        Report("w1", prefillRate: 50);
        Report("w2", prefillRate: 3000);
        Report("w3", prefillRate: 3000);
        var (worker, choice) = Pick(Routing(2000, new() { ["w1"] = 7 }));
        Assert.Equal(("w1", RouteReasons.Affinity), (worker, choice.Reason));
        // Its 208 tokens left to prefill count at the cluster's best rate, not at its own 50 tokens/s (over 4 s, when a
        // cold worker needs 0.7 s).
        Assert.Equal(2000 - (7 * 256), choice.PrefillTokens);
    }

    [Fact]
    public void A_short_prompt_is_not_held_back_by_a_long_prefill_that_it_would_overtake()
    {
        // w1 is prefilling a cold 10,000-token prompt; w2 has a slot free after 2.5 s. The worker prefills the prompt with the
        // fewest tokens left first, so a 400-token prompt waits for 400 tokens of it at most (0.8 s in all) and w1 wins.
        _options.NewConversationLoadMargin = 2;
        Report("w1", running: 1, pendingPrefill: 10_000);
        Report("w2", running: 4, queued: 0);
        Report("w3", running: 4, queued: 0);
        Assert.Equal("w1", Pick(Routing(400)).Worker);

        // A prompt as long as the backlog waits for all of it: 10 s + 10 s on w1 against 2.5 s + 10 s on w2.
        Assert.Equal("w2", Pick(Routing(10_000)).Worker);
    }

    [Fact]
    public void Later_turns_keep_their_worker_however_much_it_caches()
    {
        Report("w1", heldBlocks: 200, kvUsed: 30_000);
        Report("w2");
        Report("w3");
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing(2000, new() { ["w1"] = 7 }))));
        Assert.Equal(("w1", RouteReasons.Session), Reasoned(Pick(Routing(2000, session: "w1"))));

        // A holder that is slower than a cold worker (5 s of slot wait: a quarter of the 10 s mean duration for each of two
        // requests ahead) loses as before, and the cold workers spread among themselves.
        _options.NewConversationLoadMargin = 2;
        Report("w1", running: 4, queued: 1, heldBlocks: 200);
        Report("w2", heldBlocks: 5);
        Report("w3", heldBlocks: 1);
        Assert.Equal(("w3", RouteReasons.Load), Reasoned(Pick(Routing(2000, new() { ["w1"] = 7 }))));
    }

    [Fact]
    public void A_worker_whose_context_clearly_cannot_hold_the_prompt_is_skipped_even_when_it_holds_the_prefix()
    {
        Report("w1", context: 4096);
        Report("w2", context: 32_768);
        Report("w3", context: 32_768);
        var held = new Dictionary<string, int> { ["w1"] = 20 };

        // 8000 estimated tokens > 1.5 x 4096.
        var (worker, choice) = Pick(Routing(8000, held));
        Assert.NotEqual("w1", worker);
        Assert.Equal(RouteReasons.Load, choice.Reason);

        // Within the margin the estimate may be wrong: w1 stays a candidate (and wins by affinity).
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing(6000, held))));
        Assert.Equal(("w1", RouteReasons.Affinity), Reasoned(Pick(Routing((int)(1.5 * 4096), held))));
        Assert.NotEqual("w1", Pick(Routing((int)(1.5 * 4096) + 1, held)).Worker);
    }

    [Fact]
    public void When_no_worker_can_hold_the_prompt_the_one_with_the_largest_context_gets_it_to_answer()
    {
        Report("w1", context: 4096);
        Report("w2", context: 16_384);
        Report("w3", context: 8192, heldBlocks: 0);
        var (worker, choice) = Pick(Routing(100_000, new() { ["w3"] = 50 }));
        Assert.Equal("w2", worker);
        Assert.Equal(RouteReasons.Context, choice.Reason);
        Assert.Equal(100_000, choice.PrefillTokens);

        // Not one tried already; and passive health only breaks ties.
        Assert.Equal("w3", Pick(Routing(100_000), [_destinations[0], _destinations[2]]).Worker);
        Report("w1", context: 16_384);
        _destinations[0].Health.Passive = DestinationHealth.Unhealthy;
        Assert.Equal("w2", Pick(Routing(100_000)).Worker);
        _destinations[1].Health.Passive = DestinationHealth.Unhealthy;
        Assert.Equal("w1", Pick(Routing(100_000)).Worker);
    }

    [Fact]
    public void A_worker_with_unknown_context_is_never_excluded()
    {
        Report("w1", context: 0);
        Report("w2", context: 4096);
        Assert.Equal(("w1", RouteReasons.Load), Reasoned(Pick(Routing(100_000), _destinations.Take(2))));

        // No status at all (w3 never reported): unknown too, a candidate by fallback.
        Assert.Equal(("w3", RouteReasons.Fallback), Reasoned(Pick(Routing(100_000), [_destinations[1], _destinations[2]])));

        // Traffic without an inspected request (gRPC) has no prompt size and excludes nothing.
        Assert.Equal("w2", PickId(new DefaultHttpContext(), [_destinations[1]]));
    }

    [Fact]
    public void The_chosen_workers_prefill_is_the_prompt_less_what_it_holds()
    {
        ReportIdle();
        Assert.Equal(2000 - (7 * 256), Pick(Routing(2000, new() { ["w2"] = 7 })).Choice.PrefillTokens);
        Assert.Equal(2000, Pick(Routing(2000)).Choice.PrefillTokens);
    }

    private static (string?, string?) Reasoned((string? Worker, RouteChoiceFeature Choice) pick) => (pick.Worker, pick.Choice.Reason);
}
