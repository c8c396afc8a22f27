using System.Net;

namespace GpuFleet.Gateway.Destinations;

/// <summary>The operating system's resolver (getaddrinfo: /etc/hosts, then DNS), as a Kubernetes pod sees it.</summary>
internal sealed class SystemWorkerAddressResolver : IWorkerAddressResolver
{
    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        Dns.GetHostAddressesAsync(host, cancellationToken);
}
