namespace GpuFleet.Contracts;

/// <summary>Full gRPC method names of the gpufleet.v1 services, shared by workers (serving) and gateways (calling).</summary>
public static class GpuFleetMethods
{
    public const string Generate = "/gpufleet.v1.Inference/Generate";

    public const string WatchStatus = "/gpufleet.v1.WorkerStatusService/Watch";
}
