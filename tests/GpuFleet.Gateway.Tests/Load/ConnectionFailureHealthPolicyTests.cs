using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Tests.Observability;
using GpuFleet.Testing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Tests.Load;

/// <summary>The passive health policy: which forwarding outcomes put a worker aside, for how long, and how it comes back.</summary>
public sealed class ConnectionFailureHealthPolicyTests
{
    private readonly RecordingHealthUpdater _updater = new();
    private readonly ManualTimeProvider _clock = new();
    private readonly WorkerEjections _ejections;
    private readonly ConnectionFailureHealthPolicy _policy;
    private readonly ClusterState _cluster = new("workers");
    private readonly DestinationState _worker = new("w1");

    public ConnectionFailureHealthPolicyTests()
    {
        _ejections = new WorkerEjections(new PassiveHealthOptions(), _clock);
        _policy = new ConnectionFailureHealthPolicy(_updater, _ejections, TestMeters.Routing());
    }

    private void Proxied(ForwarderError error)
    {
        var context = new DefaultHttpContext();
        if (error != ForwarderError.None)
        {
            context.Features.Set<IForwarderErrorFeature>(new ErrorFeature(error));
        }

        _policy.RequestProxied(context, _cluster, _worker);
    }

    [Fact]
    public void Three_failures_in_a_row_take_a_worker_out_and_a_success_between_them_starts_the_count_again()
    {
        Proxied(ForwarderError.Request);
        Proxied(ForwarderError.ResponseBodyDestination);
        Proxied(ForwarderError.None);
        Proxied(ForwarderError.Request);
        Proxied(ForwarderError.RequestTimedOut);
        Assert.Empty(_updater.Calls);

        Proxied(ForwarderError.Request);
        Assert.Equal([(DestinationHealth.Unhealthy, TimeSpan.FromSeconds(2))], _updater.Calls);
    }

    [Fact]
    public void The_queued_requests_of_a_worker_taken_out_fail_without_taking_it_out_again()
    {
        for (var i = 0; i < 16; i++)
        {
            Proxied(ForwarderError.Request); // a killed worker's queue, failing at once
        }

        Assert.Single(_updater.Calls);
        Assert.Equal(WorkerEjections.FirstShare, _ejections.Share("w1"));
    }

    [Fact]
    public void A_returning_worker_gets_a_rising_share_of_its_slots_and_one_failure_then_takes_it_out_for_twice_as_long()
    {
        Fail(3);
        _clock.Advance(TimeSpan.FromSeconds(2)); // the time out ends: it returns with a tenth of its slots
        Assert.Equal(0.1, _ejections.Share("w1"), 3);
        _clock.Advance(TimeSpan.FromSeconds(15));
        Assert.Equal(0.55, _ejections.Share("w1"), 3);

        Proxied(ForwarderError.Request);
        Assert.Equal((DestinationHealth.Unhealthy, TimeSpan.FromSeconds(4)), _updater.Calls[^1]);
        foreach (var expected in new[] { 8, 16, 30, 30 })
        {
            _clock.Advance(_updater.Calls[^1].Period);
            Proxied(ForwarderError.Request);
            Assert.Equal(TimeSpan.FromSeconds(expected), _updater.Calls[^1].Period);
        }
    }

    [Fact]
    public void A_whole_slow_start_without_failure_brings_it_fully_back_and_the_next_ejection_starts_from_two_seconds()
    {
        Fail(3);
        _clock.Advance(TimeSpan.FromSeconds(2));
        Proxied(ForwarderError.None);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Proxied(ForwarderError.None);
        Assert.Equal(1, _ejections.Share("w1"));

        Fail(2);
        Assert.Single(_updater.Calls); // back to three in a row
        Proxied(ForwarderError.Request);
        Assert.Equal(TimeSpan.FromSeconds(2), _updater.Calls[^1].Period);
    }

    [Fact]
    public void A_worker_taken_out_that_serves_a_request_as_the_last_resort_is_healed_at_once_with_a_slow_start()
    {
        Fail(3);
        _worker.Health.Passive = DestinationHealth.Unhealthy;
        Proxied(ForwarderError.None);
        Assert.Equal(DestinationHealth.Healthy, _updater.Calls[^1].Health);
        Assert.Equal(WorkerEjections.FirstShare, _ejections.Share("w1"));
    }

    private void Fail(int times)
    {
        for (var i = 0; i < times; i++)
        {
            Proxied(ForwarderError.Request);
        }
    }

    [Theory]
    [InlineData(ForwarderError.RequestCanceled)]
    [InlineData(ForwarderError.RequestBodyClient)]
    [InlineData(ForwarderError.ResponseBodyClient)]
    [InlineData(ForwarderError.ResponseBodyCanceled)]
    [InlineData(ForwarderError.NoAvailableDestinations)]
    public void Client_side_and_routing_outcomes_never_count_against_the_worker(ForwarderError error)
    {
        Proxied(error);
        Assert.Empty(_updater.Calls);
    }

    [Fact]
    public void A_healthy_worker_serving_requests_is_left_alone()
    {
        Proxied(ForwarderError.None);
        Assert.Empty(_updater.Calls);
    }

    private sealed class ErrorFeature(ForwarderError error) : IForwarderErrorFeature
    {
        public ForwarderError Error { get; } = error;

        public Exception? Exception => null;
    }

    private sealed class RecordingHealthUpdater : IDestinationHealthUpdater
    {
        public List<(DestinationHealth Health, TimeSpan Period)> Calls { get; } = [];

        public void SetActive(ClusterState cluster, IEnumerable<NewActiveDestinationHealth> newHealthStates) => throw new NotSupportedException();

        public void SetPassive(ClusterState cluster, DestinationState destination, DestinationHealth newHealth, TimeSpan reactivationPeriod) =>
            Calls.Add((newHealth, reactivationPeriod));
    }
}
