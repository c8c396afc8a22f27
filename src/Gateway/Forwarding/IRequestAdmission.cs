using GpuFleet.Gateway.Routing;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>A check every generation request passes before routing (per-key limits), told the real usage at the end.</summary>
internal interface IRequestAdmission
{
    /// <summary>False when refused; the refusal response is then written.</summary>
    Task<bool> AdmitAsync(HttpContext context, InspectedRequest request, int estimatedTokens);

    /// <summary>The request ended; <paramref name="usage"/> is the worker's report when one came.</summary>
    Task CompleteAsync(HttpContext context, GpuFleet.Contracts.UsageReport? usage);
}
