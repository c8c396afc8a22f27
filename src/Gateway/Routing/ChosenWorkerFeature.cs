namespace GpuFleet.Gateway.Routing;

/// <summary>
/// The worker of the current attempt, on the HttpContext's features: set by the chosen-worker stage
/// (ChosenWorkerMiddleware) alone, once per attempt, right after load balancing. Read by failover and metrics.
/// </summary>
internal sealed class ChosenWorkerFeature(string destination)
{
    public string Destination { get; } = destination;
}
