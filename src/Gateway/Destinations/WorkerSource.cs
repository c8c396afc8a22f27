namespace GpuFleet.Gateway.Destinations;

/// <summary>Where a worker's URL came from; on a tie (same destination from two sources) the lower value wins.</summary>
internal enum WorkerSource
{
    /// <summary><c>Gateway:Workers</c> (<c>--worker URL</c>): fixed for the gateway's life.</summary>
    Static,

    /// <summary><c>Gateway:WorkersDns</c> (<c>--workers-dns NAME:PORT</c>): every address of a name, re-resolved.</summary>
    Dns,

    /// <summary>The worker registry in Redis: workers that announce themselves with a heartbeat.</summary>
    Registry,
}
