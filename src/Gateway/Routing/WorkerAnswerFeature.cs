using GpuFleet.Contracts;

namespace GpuFleet.Gateway.Routing;

/// <summary>
/// What the worker of the current attempt answered, on the HttpContext's features: a fresh one per attempt (set by
/// the failover stage), written only as the answer arrives, by its headers (WorkerResponseTransform) and its body
/// (ResponseWatch, the stream's usage comment). Read by failover, the admissions' settlement and metrics.
/// </summary>
internal sealed class WorkerAnswerFeature
{
    /// <summary>
    /// The worker refused (429 or 503) while another worker could still be tried: its body was suppressed, and the
    /// failover stage moves the request. Null when it did not.
    /// </summary>
    public int? RefusedStatus { get; set; }

    /// <summary>The worker's usage report, once seen (a JSON response's header, or a stream's closing comment).</summary>
    public UsageReport? Usage { get; set; }
}
