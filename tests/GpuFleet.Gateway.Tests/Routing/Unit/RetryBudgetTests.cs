using GpuFleet.Gateway.Forwarding;
using GpuFleet.Testing;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>The failover retry budget on virtual time: a floor, a share of recent requests, over a sliding 10 s.</summary>
public sealed class RetryBudgetTests
{
    private readonly ManualTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private static int Drain(RetryBudget budget)
    {
        var granted = 0;
        while (budget.TryRetry())
        {
            granted++;
            Assert.True(granted < 10_000, "the budget never ran out");
        }

        return granted;
    }

    private static void Requests(RetryBudget budget, int count)
    {
        for (var i = 0; i < count; i++)
        {
            budget.RecordRequest();
        }
    }

    [Fact]
    public void With_little_traffic_the_minimum_number_of_retries_is_allowed()
    {
        var budget = new RetryBudget(new ForwardingOptions(), _clock);
        Assert.Equal(10, Drain(budget));
        Assert.False(budget.TryRetry());

        var other = new RetryBudget(new ForwardingOptions(), _clock);
        Requests(other, 49); // 20% of 49 is 9: the floor of 10 still applies
        Assert.Equal(10, Drain(other));

        var none = new RetryBudget(new ForwardingOptions { MinRetriesPer10Seconds = 0 }, _clock);
        Assert.False(none.TryRetry());
        Requests(none, 5);
        Assert.Equal(1, Drain(none));
    }

    [Fact]
    public void With_more_traffic_a_share_of_the_requests_is_allowed()
    {
        var budget = new RetryBudget(new ForwardingOptions(), _clock);
        Requests(budget, 100);
        Assert.Equal(20, Drain(budget));

        // More requests top it up.
        Requests(budget, 50);
        Assert.Equal(10, Drain(budget));

        var half = new RetryBudget(new ForwardingOptions { RetryBudgetRatio = 0.5, MinRetriesPer10Seconds = 1 }, _clock);
        Requests(half, 7);
        Assert.Equal(3, Drain(half));
    }

    [Fact]
    public void Requests_spread_over_the_window_all_count()
    {
        var budget = new RetryBudget(new ForwardingOptions(), _clock);
        for (var second = 0; second < 10; second++)
        {
            Requests(budget, 20);
            _clock.Advance(TimeSpan.FromSeconds(1));
        }

        // Now at second 10: the requests of seconds 1..9 (180) are in the window, second 0's have left it.
        Assert.Equal(36, Drain(budget));
    }

    [Fact]
    public void Spent_retries_come_back_when_they_leave_the_ten_second_window()
    {
        var budget = new RetryBudget(new ForwardingOptions(), _clock);
        Assert.Equal(10, Drain(budget));

        _clock.Advance(TimeSpan.FromSeconds(9.999));
        Assert.False(budget.TryRetry());

        _clock.Advance(TimeSpan.FromMilliseconds(1)); // 10 s later
        Assert.Equal(10, Drain(budget));
    }

    [Fact]
    public void Old_requests_stop_counting_after_ten_seconds_while_recent_retries_still_count()
    {
        var budget = new RetryBudget(new ForwardingOptions(), _clock);
        Requests(budget, 100); // second 0
        _clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(20, Drain(budget)); // second 5

        _clock.Advance(TimeSpan.FromSeconds(5)); // second 10: the requests are gone, the 20 retries of second 5 are not
        Assert.False(budget.TryRetry());
        _clock.Advance(TimeSpan.FromSeconds(4));
        Assert.False(budget.TryRetry());
        _clock.Advance(TimeSpan.FromSeconds(1)); // second 15
        Assert.Equal(10, Drain(budget));
    }

    [Fact]
    public void A_bucket_reused_after_a_long_pause_starts_empty()
    {
        var budget = new RetryBudget(new ForwardingOptions(), _clock);
        Requests(budget, 1000);
        Assert.Equal(200, Drain(budget));

        // Same bucket index (a multiple of 10 s later), and also long after: nothing carries over.
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(10, Drain(budget));
        _clock.Advance(TimeSpan.FromHours(3));
        Requests(budget, 60);
        Assert.Equal(12, Drain(budget));
    }

    [Fact]
    public void Re_placing_the_work_of_a_worker_that_is_gone_or_full_never_spends_the_budget()
    {
        var none = new RetryBudget(new ForwardingOptions { MinRetriesPer10Seconds = 0, RetryBudgetRatio = 0 }, _clock);
        Requests(none, 100);
        Assert.False(none.TryRetry(RetryCause.WorkerUnavailable));
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(none.TryRetry(RetryCause.WorkerAtCapacity));
            Assert.True(none.TryRetry(RetryCause.ConnectionFailed));
        }

        // A fleet refusing at capacity, or losing a worker with its queue, leaves the whole budget to workers answering 503.
        var budget = new RetryBudget(new ForwardingOptions(), _clock);
        for (var i = 0; i < 500; i++)
        {
            Assert.True(budget.TryRetry(RetryCause.WorkerAtCapacity));
            Assert.True(budget.TryRetry(RetryCause.ConnectionFailed));
        }

        Assert.Equal(10, Drain(budget));
        Assert.False(budget.TryRetry(RetryCause.WorkerUnavailable));
    }
}
