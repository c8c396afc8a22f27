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
            // No report: refused or failed before any work (an error status) costs nothing; a response that started and
            // then lost its report (the client left mid-stream) keeps its estimate, so disconnecting is no way around tpm.
            var actual = usage?.TotalTokens ?? (context.Response.StatusCode >= 400 ? 0 : estimate.Tokens);
            await limiter.SettleAsync(key, estimate.Tokens, actual, CancellationToken.None);
        }
    }

    private sealed record Estimate(int Tokens);
}
