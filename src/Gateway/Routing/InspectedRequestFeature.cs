using GpuFleet.Gateway.Routing.Affinity;

namespace GpuFleet.Gateway.Routing;

/// <summary>
/// What the inspection stage (RequestInspectionMiddleware) learned of a generation request, on the HttpContext's
/// features: written by that stage alone, read by the later ones (the policy, failover, the body transform, metrics).
/// Absent for requests that are no generation (a model list, say).
/// </summary>
internal sealed class InspectedRequestFeature
{
    /// <summary>The inspected request; null for a gRPC body the gateway could not read (it goes on as it is, without affinity).</summary>
    public InspectedRequest? Request { get; init; }

    /// <summary>The request body as the gateway read it, sent as is to every attempt.</summary>
    public byte[]? Body { get; init; }

    /// <summary>Estimated prompt tokens (canonical bytes / calibrated bytes per token).</summary>
    public int PromptTokens { get; init; }

    /// <summary>
    /// Which workers hold the prompt's blocks, and the session's worker: set by the same stage once its lookup returns,
    /// after the admissions (the feature is on the context before them, so that a refusal still settles the admissions).
    /// </summary>
    public AffinityLookup Affinity { get; set; } = AffinityLookup.Empty;
}
