using System.Diagnostics.Metrics;
using GpuFleet.Gateway.Load;

namespace GpuFleet.Gateway.Observability;

/// <summary>
/// The routing instruments that the proxy's inner stages record (on the gateway's meter, <see cref="GatewayMetrics.MeterName"/>):
/// decisions by route reason, per attempt, and workers ejected by passive health. Apart from <see cref="GatewayMetrics"/>
/// so that those stages depend on nothing but a meter factory.
/// </summary>
internal sealed class RoutingMetrics
{
    private readonly Counter<long> _decisions;
    private readonly PerWorkerCounts _ejections;

    public RoutingMetrics(IMeterFactory meters, WorkerLoadBoard board)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _ejections = new PerWorkerCounts(board);
        var meter = meters.Create(GatewayMetrics.MeterName);
        _decisions = meter.CreateCounter<long>("gpufleet_gateway_routing_decisions", "{decision}",
            "Workers chosen by the load-balancing policy, one per attempt, by route reason.");
        meter.CreateObservableCounter("gpufleet_gateway_worker_ejections", _ejections.Observe, "{ejection}",
            "Times a worker was taken out of rotation by passive health (connection failure or broken response).");
    }

    public void ObserveDecision(string? route) => _decisions.Add(1, new KeyValuePair<string, object?>("route", route ?? "none"));

    public void ObserveEjection(string worker) => _ejections.Increment(worker);
}
