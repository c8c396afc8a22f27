using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Forwarding;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;
using GpuFleet.Testing;

namespace GpuFleet.Gateway.Tests.Forwarding;

/// <summary>The first-token timeout grows with the prompt's expected prefill on the chosen worker, within its bounds.</summary>
public sealed class FirstTokenTimeoutsTests
{
    private readonly ForwardingOptions _options = new()
    {
        FirstTokenTimeout = TimeSpan.FromMinutes(5),
        FirstTokenPrefillFactor = 2,
        MaxFirstTokenTimeout = TimeSpan.FromMinutes(30),
    };

    [Fact]
    public void The_timeout_is_the_base_plus_the_prompts_prefill_at_the_workers_rate_times_the_factor()
    {
        // 10,000 tokens at 100 tokens/s: 100 s of prefill, 200 s with the factor.
        Assert.Equal(TimeSpan.FromSeconds(300 + 200), FirstTokenTimeouts.Compute(_options, 10_000, 100));
        Assert.Equal(TimeSpan.FromSeconds(300 + 20), FirstTokenTimeouts.Compute(_options, 1000, 100));
        Assert.Equal(TimeSpan.FromSeconds(300 + 2), FirstTokenTimeouts.Compute(_options, 1000, 1000));

        _options.FirstTokenPrefillFactor = 3;
        Assert.Equal(TimeSpan.FromSeconds(300 + 300), FirstTokenTimeouts.Compute(_options, 10_000, 100));
    }

    [Fact]
    public void Without_a_measured_rate_or_anything_to_prefill_the_timeout_is_the_base()
    {
        Assert.Equal(TimeSpan.FromMinutes(5), FirstTokenTimeouts.Compute(_options, 50_000, null));
        Assert.Equal(TimeSpan.FromMinutes(5), FirstTokenTimeouts.Compute(_options, 0, 100));
    }

    [Fact]
    public void The_timeout_never_exceeds_the_maximum()
    {
        Assert.Equal(TimeSpan.FromMinutes(30), FirstTokenTimeouts.Compute(_options, 1_000_000, 100));
        Assert.Equal(TimeSpan.FromMinutes(30), FirstTokenTimeouts.Compute(_options, int.MaxValue, 2));
        _options.MaxFirstTokenTimeout = TimeSpan.FromMinutes(5);
        Assert.Equal(TimeSpan.FromMinutes(5), FirstTokenTimeouts.Compute(_options, 10_000, 100));
    }

    [Fact]
    public void The_rate_is_the_workers_last_measured_one()
    {
        var clock = new ManualTimeProvider();
        var board = new WorkerLoadBoard(clock);
        var timeouts = new FirstTokenTimeouts(_options, board, new WorkerTraffic(clock));
        Assert.Equal(TimeSpan.FromMinutes(5), timeouts.For("w1", 4000)); // never heard of

        Report(board, "w1", 0);
        Assert.Equal(TimeSpan.FromMinutes(5), timeouts.For("w1", 4000)); // no rate measured yet

        Report(board, "w1", 200);
        Assert.Equal(TimeSpan.FromSeconds(300 + 40), timeouts.For("w1", 4000));

        // An idle worker's recent rate drops to 0: the last measured one still applies.
        Report(board, "w1", 0);
        Assert.Equal(TimeSpan.FromSeconds(300 + 40), timeouts.For("w1", 4000));
    }

    [Fact]
    public void Bad_timeout_options_are_all_reported_by_key()
    {
        Assert.Empty(new ForwardingOptions().Validate());
        var errors = new ForwardingOptions { FirstTokenPrefillFactor = 0.5, FirstTokenTimeout = TimeSpan.FromMinutes(10), MaxFirstTokenTimeout = TimeSpan.FromMinutes(1) }.Validate();
        Assert.Contains(errors, e => e.Contains("Gateway:Forwarding:FirstTokenPrefillFactor", StringComparison.Ordinal) && e.Contains("0.5", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Gateway:Forwarding:MaxFirstTokenTimeout", StringComparison.Ordinal));
        Assert.NotEmpty(new ForwardingOptions { FirstTokenPrefillFactor = double.NaN }.Validate());
    }

    internal static void Report(WorkerLoadBoard board, string worker, double prefillRate) =>
        board.Update(worker, new WorkerStatus
        {
            Name = worker,
            Ready = true,
            Engine = new EngineStatus { TotalSlots = 4, PrefillTokensPerSecond = prefillRate },
        });
}
