using GpuFleet.Gateway.Observability;
using GpuFleet.Gateway.Routing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// The proxy stage right after load balancing, once per attempt: exactly one destination is left. Records it (the
/// <see cref="ChosenWorkerFeature"/>, written here alone), sets the attempt's first-token timeout from the prompt's
/// expected prefill there, and counts the request against the worker while it runs.
/// </summary>
internal sealed class ChosenWorkerMiddleware(RequestDelegate next, WorkerTraffic traffic, FirstTokenTimeouts timeouts, RoutingMetrics metrics)
{
    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var chosen = context.Features.Get<IReverseProxyFeature>()!.AvailableDestinations[0].DestinationId;
        context.Features.Set(new ChosenWorkerFeature(chosen));
        // The policy's choice; absent when YARP had one destination left and skipped the policy (the previous one stands).
        var choice = context.Features.Get<RouteChoiceFeature>();
        metrics.ObserveDecision(choice?.Reason);
        context.Features.Get<ResponseWatch>()?.FirstTokenTimeout = timeouts.For(chosen, (choice?.PrefillTokens ?? 0) + (choice?.AwaitedTokens ?? 0));
        var newBlocks = context.Features.Get<InspectedRequestFeature>()?.Request is { } request ? request.Blocks.Count - (choice?.HeldBlocks ?? 0) : 0;
        using var sent = traffic.Begin(chosen, newBlocks, choice?.PrefillTokens);
        await next(context);
        if (context.Response.StatusCode is >= 200 and < 300)
        {
            sent.Complete();
        }
    }
}
