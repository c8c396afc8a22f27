namespace GpuFleet.Gateway.Hosting;

/// <summary>Which addresses of a DNS name become workers (<see cref="GatewayOptions.DnsAddressFamily"/>).</summary>
internal enum WorkerDnsAddressFamily
{
    /// <summary>A records only (the default).</summary>
    IPv4,

    /// <summary>AAAA records only.</summary>
    IPv6,

    /// <summary>Both; a host listening on one family only then shows up as an unreachable worker too.</summary>
    Any,
}
