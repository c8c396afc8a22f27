using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Tests.Observability;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Tests.Load;

/// <summary>The passive health policy: which forwarding outcomes put a worker aside, and for how long.</summary>
public sealed class ConnectionFailureHealthPolicyTests
{
    private readonly RecordingHealthUpdater _updater = new();
    private readonly ConnectionFailureHealthPolicy _policy;
    private readonly ClusterState _cluster = new("workers");
    private readonly DestinationState _worker = new("w1");

    public ConnectionFailureHealthPolicyTests() => _policy = new ConnectionFailureHealthPolicy(_updater, TestMeters.Routing());

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
    public void Repeated_connection_failures_double_the_cool_down_up_to_30_seconds()
    {
        foreach (var _ in Enumerable.Range(0, 6))
        {
            Proxied(ForwarderError.Request);
        }

        Assert.Equal([2, 4, 8, 16, 30, 30], _updater.Calls.Select(c => c.Period.TotalSeconds));
        Assert.All(_updater.Calls, c => Assert.Equal(DestinationHealth.Unhealthy, c.Health));
    }

    [Fact]
    public void A_served_request_resets_the_cool_down_and_heals_an_unhealthy_worker()
    {
        Proxied(ForwarderError.Request);
        Proxied(ForwarderError.RequestTimedOut);
        Assert.Equal(TimeSpan.FromSeconds(4), _updater.Calls[^1].Period);

        _worker.Health.Passive = DestinationHealth.Unhealthy;
        Proxied(ForwarderError.None);
        Assert.Equal(DestinationHealth.Healthy, _updater.Calls[^1].Health);

        Proxied(ForwarderError.ResponseBodyDestination);
        Assert.Equal((DestinationHealth.Unhealthy, TimeSpan.FromSeconds(2)), (_updater.Calls[^1].Health, _updater.Calls[^1].Period));
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
