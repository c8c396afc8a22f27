using GpuFleet.Gateway.Destinations;
using GpuFleet.Gateway.Load;

namespace GpuFleet.Gateway.Hosting;

/// <summary>
/// Destinations' view of the gRPC addresses the workers report, read from Load's board. It lives in the composition
/// layer, which may see both folders, so that Destinations does not depend on Load (Load depends on Destinations).
/// </summary>
internal sealed class StatusGrpcAddresses(WorkerLoadBoard board) : IWorkerGrpcAddresses
{
    public event Action? Changed
    {
        add => board.AvailabilityChanged += value;
        remove => board.AvailabilityChanged -= value;
    }

    public Uri? Find(WorkerEndpoint worker)
    {
        ArgumentNullException.ThrowIfNull(worker);
        if (board.Get(worker.Destination)?.Status is not { GrpcAddress.Length: > 0 } status)
        {
            return null;
        }

        try
        {
            // The status names the port; the host is the one the gateway reaches the worker by.
            return WorkerStatusMonitor.GrpcAddress(new Uri(worker.Url), status.GrpcAddress);
        }
        catch (InvalidOperationException)
        {
            // No usable gRPC address reported: the worker serves HTTP only.
            return null;
        }
    }
}
