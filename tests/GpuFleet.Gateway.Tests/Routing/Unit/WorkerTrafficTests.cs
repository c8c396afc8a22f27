using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Routing;
using GpuFleet.Testing;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>The gateway's own view of each worker's outstanding work between the worker's reports, on virtual time.</summary>
public sealed class WorkerTrafficTests
{
    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private static EngineStatus Report(uint running, uint queued, ulong pendingPrefill) =>
        new() { TotalSlots = 4, RunningSlots = running, QueueDepth = queued, QueueCapacity = 8, PendingPrefillTokens = pendingPrefill };

    [Fact]
    public void Requests_sent_after_a_report_are_added_to_it_until_they_end()
    {
        var traffic = new WorkerTraffic(_clock);
        using var before = traffic.Begin("w1");
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        var reportAt = _clock.GetTimestamp();
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        var after1 = traffic.Begin("w1");
        using var after2 = traffic.Begin("w1");

        // The report already holds the first request; the two sent since are not in it yet.
        // A 50-token prompt waits for at most 50 tokens of each of the three reported requests, and their prefill being
        // unknown here, for 50 of each sent since.
        Assert.Equal(new WorkerTraffic.WorkEstimate(2 + 1 + 2, 2, 300, 150 + 100), traffic.Outstanding("w1", Report(2, 1, 300), reportAt, 50));
        after1.Complete();
        Assert.Equal(new WorkerTraffic.WorkEstimate(2 + 1 + 1, 1, 300, 150 + 50), traffic.Outstanding("w1", Report(2, 1, 300), reportAt, 50));
        Assert.Equal(0, traffic.Outstanding("w2", Report(0, 0, 0), reportAt).Requests);
    }

    [Fact]
    public void A_report_older_than_the_last_request_to_end_counts_only_its_queue_when_nothing_is_in_flight()
    {
        var traffic = new WorkerTraffic(_clock);
        var sent = traffic.Begin("w1");
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        var reportAt = _clock.GetTimestamp(); // the worker reports the request running
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        sent.Complete(); // then it ends, before the next report

        // Its running work and prefill backlog are over; another replica's queued work may not be.
        Assert.Equal(new WorkerTraffic.WorkEstimate(1, 0, 0, 0), traffic.Outstanding("w1", Report(3, 1, 500), reportAt));

        // A newer report is taken at its word again.
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal(new WorkerTraffic.WorkEstimate(4, 0, 500, 500), traffic.Outstanding("w1", Report(3, 1, 500), _clock.GetTimestamp()));

        // And so is an older one while a request of ours is still in flight there.
        using var again = traffic.Begin("w1");
        Assert.Equal(new WorkerTraffic.WorkEstimate(3 + 1 + 1, 1, 500, 500 + 1000), traffic.Outstanding("w1", Report(3, 1, 500), reportAt, 1000));
    }

    [Fact]
    public void A_short_prompt_waits_for_at_most_its_own_size_of_each_prompt_ahead_as_the_worker_prefills_shortest_first()
    {
        var traffic = new WorkerTraffic(_clock);
        var reportAt = _clock.GetTimestamp();
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        using var cold = traffic.Begin("w1", prefillTokens: 16_000);
        using var warm = traffic.Begin("w1", prefillTokens: 300);

        // Reported: two requests with 20,000 tokens left between them. A 500-token turn waits for at most 500 of each
        // of them and of the cold prompt sent since, and for all of the 300-token one.
        Assert.Equal(500 + 500 + 500 + 300, traffic.Outstanding("w1", Report(2, 0, 20_000), reportAt, 500).PrefillAhead);
        // A prompt as long as any of them waits for all of it.
        Assert.Equal(20_000 + 16_000 + 300, traffic.Outstanding("w1", Report(2, 0, 20_000), reportAt, 16_000).PrefillAhead);
    }

    [Fact]
    public void Blocks_sent_after_a_report_are_counted_until_the_next_report_and_the_last_send_is_known()
    {
        var traffic = new WorkerTraffic(_clock);
        Assert.Equal((0, 0L), traffic.SentBlocksSince("w1", 0));
        traffic.Begin("w1", 5).Complete();
        var firstAt = _clock.GetTimestamp();
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        var reportAt = _clock.GetTimestamp();
        _clock.Advance(TimeSpan.FromMilliseconds(10));
        using var open = traffic.Begin("w1", 3);
        traffic.Begin("w1", 4).Complete();
        traffic.Begin("w1", -2).Dispose(); // a count below zero (held more than sent) adds nothing

        var lastAt = _clock.GetTimestamp();
        Assert.Equal((7, lastAt), traffic.SentBlocksSince("w1", reportAt));
        Assert.Equal((12, lastAt), traffic.SentBlocksSince("w1", firstAt - 1));
        Assert.Equal((0, lastAt), traffic.SentBlocksSince("w1", lastAt));
        Assert.Equal((0, 0L), traffic.SentBlocksSince("w2", 0));
    }
}
