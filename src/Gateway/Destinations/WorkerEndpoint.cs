namespace GpuFleet.Gateway.Destinations;

/// <summary>One worker the gateway routes to: its YARP destination id (<c>host:port</c>) and base URL.</summary>
internal sealed record WorkerEndpoint(string Destination, string Url, WorkerSource Source);
