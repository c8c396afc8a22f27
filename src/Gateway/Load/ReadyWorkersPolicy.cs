using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Load;

/// <summary>
/// YARP's available-destinations policy for GpuFleet: workers that are ready, not draining and fresh get
/// new work. When none is, workers not known to refuse (stale or not yet heard from) are the fallback, so the
/// gateway still serves while its status streams reconnect; draining and unready workers never get new work.
/// </summary>
internal sealed class ReadyWorkersPolicy(WorkerLoadBoard board) : IAvailableDestinationsPolicy
{
    public const string PolicyName = "GpuFleetReady";

    public string Name => PolicyName;

    public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations)
    {
        ArgumentNullException.ThrowIfNull(allDestinations);
        var ready = allDestinations.Where(d => board.IsAvailable(d.DestinationId)).ToList();
        return ready.Count > 0 ? ready : [.. allDestinations.Where(d => !board.IsRefusing(d.DestinationId))];
    }
}
