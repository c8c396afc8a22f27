using System.Net;

namespace GpuFleet.Gateway.Destinations;

/// <summary>Resolves a host name to its addresses: the system resolver in production, a scripted one in tests.</summary>
internal interface IWorkerAddressResolver
{
    Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken);
}
