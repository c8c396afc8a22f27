using GpuFleet.Contracts;
using GpuFleet.Gateway.Forwarding;
using GpuFleet.Gateway.Routing;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Auth;

/// <summary>
/// Per-key limits in the forwarding pipeline: counts the request and its estimated tokens (prompt estimate + max
/// tokens) before routing, refuses with 429 when a limit is reached, and settles the estimate against the worker's
/// usage report when the request ends. Keys without limits cost nothing here.
/// </summary>
internal sealed class KeyLimitAdmission(KeyRateLimiter limiter) : IRequestAdmission
{
    public async Task<bool> AdmitAsync(HttpContext context, InspectedRequest request, int estimatedTokens)
    {
        if (context.Features.Get<ApiKeyFeature>()?.Key is not { HasLimits: true } key)
        {
            return true;
        }

        var decision = await limiter.AcquireAsync(key, estimatedTokens, context.RequestAborted);
        if (!decision.Allowed)
        {
            await RateLimitResponses.WriteRefusalAsync(context, decision);
            return false;
        }

        RateLimitResponses.WriteHeaders(context.Response, decision);
        context.Features.Set(new Estimate(estimatedTokens));
        return true;
    }

    public async Task CompleteAsync(HttpContext context, UsageReport? usage)
    {
        if (context.Features.Get<ApiKeyFeature>()?.Key is { HasLimits: true } key && context.Features.Get<Estimate>() is { } estimate)
        {
            // No report (failed before any work): nothing was generated beyond what the worker refused.
            await limiter.SettleAsync(key, estimate.Tokens, usage?.TotalTokens ?? 0, CancellationToken.None);
        }
    }

    private sealed record Estimate(int Tokens);
}
