using GpuFleet.Contracts;
using GpuFleet.Gateway.Forwarding;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Auth;

/// <summary>
/// Per-key limits in the forwarding pipeline: counts the request and its estimated tokens (prompt estimate + max
/// tokens) before routing, refuses with 429 when a limit is reached, and settles the estimate against the worker's
/// usage report when the request ends. Keys without limits cost nothing here.
/// </summary>
internal sealed class KeyLimitAdmission(KeyRateLimiter limiter, WorkerLoadBoard board) : IRequestAdmission
{
    public async Task<bool> AdmitAsync(HttpContext context, InspectedRequest request, int estimatedTokens)
    {
        if (context.Features.Get<ApiKeyFeature>()?.Key is not { HasLimits: true } key)
        {
            return true;
        }

        // No request costs more than a slot's context (prompt and completion together; the worker stops there), so a
        // max_tokens far beyond it, which OpenAI clients send freely, is not refused as larger than the key's limit.
        var largestContext = LargestContext();
        estimatedTokens = largestContext > 0 ? Math.Min(estimatedTokens, largestContext) : Math.Max(0, estimatedTokens);

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

    // Unknown until a worker has reported its status; 0 then, and the estimate stands as it is.
    private int LargestContext()
    {
        uint largest = 0;
        foreach (var load in board.All)
        {
            largest = Math.Max(largest, load.Status?.Engine?.ContextPerSlot ?? 0);
        }

        return (int)Math.Min(int.MaxValue, largest);
    }

    private sealed record Estimate(int Tokens);
}
