namespace GpuFleet.Gateway.Destinations;

/// <summary>
/// The gRPC address each worker reports about itself (in its status), which the gRPC cluster forwards to. Declared
/// here and implemented where statuses are watched, so that Destinations does not depend on Load.
/// </summary>
internal interface IWorkerGrpcAddresses
{
    /// <summary>Fires when a worker's reported gRPC address may have changed.</summary>
    event Action? Changed;

    /// <summary>The worker's gRPC base address; null while it has reported none it can be reached at.</summary>
    Uri? Find(WorkerEndpoint worker);
}
