using GpuFleet.Gateway.Observability;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Load;

/// <summary>
/// YARP passive health for GpuFleet: a worker that could not be reached, or that broke a response it had started, a few
/// times in a row (<see cref="PassiveHealthOptions.EjectAfterFailures"/>) is marked unhealthy for a time out that doubles
/// while ejections repeat (2 s up to 30 s); YARP brings it back when the time out ends, and the routing policy then
/// gives it a rising share of its slots (<see cref="WorkerEjections.Share"/>). Refusals (429/503), timeouts, client
/// cancellations and 4xx answers are load or the client's doing, not failure, and never count. An unhealthy worker is
/// still used when no other is left (see the time-to-first-token policy); serving a request then brings it back.
/// </summary>
internal sealed class ConnectionFailureHealthPolicy(IDestinationHealthUpdater health, WorkerEjections ejections, RoutingMetrics metrics) : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "GpuFleetConnectionFailures";

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(destination);
        var error = context.Features.Get<IForwarderErrorFeature>()?.Error ?? ForwarderError.None;
        if (error is ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.ResponseBodyDestination)
        {
            if (ejections.Failed(destination.DestinationId) is { } coolDown)
            {
                health.SetPassive(cluster, destination, DestinationHealth.Unhealthy, coolDown);
                metrics.ObserveEjection(destination.DestinationId);
            }
        }
        else if (error is ForwarderError.None && ejections.Served(destination.DestinationId) && destination.Health.Passive == DestinationHealth.Unhealthy)
        {
            health.SetPassive(cluster, destination, DestinationHealth.Healthy, TimeSpan.Zero);
        }
    }
}
