using System.Runtime.CompilerServices;
using GpuFleet.Gateway.Observability;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Load;

/// <summary>
/// YARP passive health for GpuFleet: a worker that could not be reached, or that broke a response it had started, is
/// marked unhealthy for a cool-down that doubles while failures repeat (2 s up to 30 s); YARP brings it back when the
/// cool-down ends, and a request it serves resets the doubling. Refusals (429/503) and timeouts are load, not failure,
/// and never count. An unhealthy worker is still used when no other is left (see the time-to-first-token policy).
/// </summary>
internal sealed class ConnectionFailureHealthPolicy(IDestinationHealthUpdater health, RoutingMetrics metrics) : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "GpuFleetConnectionFailures";

    internal static readonly TimeSpan FirstCoolDown = TimeSpan.FromSeconds(2);
    internal static readonly TimeSpan MaxCoolDown = TimeSpan.FromSeconds(30);

    // The current cool-down per destination (of one cluster); entries go with the destination's state.
    private readonly ConditionalWeakTable<DestinationState, StrongBox<TimeSpan>> _coolDowns = [];

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(destination);
        var error = context.Features.Get<IForwarderErrorFeature>()?.Error ?? ForwarderError.None;
        var coolDown = _coolDowns.GetOrCreateValue(destination);
        if (error is ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.ResponseBodyDestination)
        {
            TimeSpan period;
            lock (coolDown)
            {
                coolDown.Value = coolDown.Value == TimeSpan.Zero ? FirstCoolDown : TimeSpan.FromTicks(Math.Min(coolDown.Value.Ticks * 2, MaxCoolDown.Ticks));
                period = coolDown.Value;
            }

            health.SetPassive(cluster, destination, DestinationHealth.Unhealthy, period);
            metrics.ObserveEjection(destination.DestinationId);
        }
        else if (error is ForwarderError.None)
        {
            lock (coolDown)
            {
                coolDown.Value = TimeSpan.Zero;
            }

            if (destination.Health.Passive == DestinationHealth.Unhealthy)
            {
                health.SetPassive(cluster, destination, DestinationHealth.Healthy, TimeSpan.Zero);
            }
        }
    }
}
