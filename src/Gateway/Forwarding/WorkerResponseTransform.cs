using GpuFleet.Contracts;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// Runs when a worker's response headers arrive (its first byte): names the worker and the route reason, suppresses
/// a 429/503 body when another worker can still be tried, records the prompt's blocks against the worker that
/// accepted it, and takes the usage header of JSON responses (the refusal and the usage go to the attempt's
/// <see cref="WorkerAnswerFeature"/>).
/// </summary>
internal static class WorkerResponseTransform
{
    public static ValueTask ApplyAsync(ResponseTransformContext transform)
    {
        var context = transform.HttpContext;
        if (context.Features.Get<IReverseProxyFeature>()?.ProxiedDestination is not { } destination)
        {
            return ValueTask.CompletedTask;
        }

        var services = context.RequestServices;
        var board = services.GetRequiredService<WorkerLoadBoard>();
        var name = board.Get(destination.DestinationId)?.Status?.Name;
        context.Response.Headers[GpuFleetHeaders.Worker] = string.IsNullOrEmpty(name) ? destination.DestinationId : name;
        // The attempt's answer, which the failover stage sets up for every attempt.
        if (context.Features.Get<WorkerAnswerFeature>() is not { } answer || transform.ProxyResponse is not { } response)
        {
            return ValueTask.CompletedTask;
        }

        context.Response.Headers[GpuFleetHeaders.Route] = context.Features.Get<RouteChoiceFeature>()?.Reason ?? RouteReasons.Fallback;
        var status = (int)response.StatusCode;
        if (status is StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable && context.Features.Get<FailoverFeature>()?.MayRetry == true)
        {
            // Refused before any work: another worker may take it. The client sees nothing of this answer.
            transform.SuppressResponseBody = true;
            answer.RefusedStatus = status;
            return ValueTask.CompletedTask;
        }

        if (response.Headers.TryGetValues(GpuFleetHeaders.Usage, out var usage) && UsageReport.TryParse(usage.FirstOrDefault(), out var report))
        {
            answer.Usage = report;
        }

        context.Response.Headers.Remove(GpuFleetHeaders.Usage);
        if (status is >= 200 and < 300 && context.Features.Get<InspectedRequestFeature>()?.Request is { } request)
        {
            services.GetRequiredService<AffinityIndex>().Record(request.Model, request.Blocks, destination.DestinationId, request.SessionKey);
        }

        return ValueTask.CompletedTask;
    }
}
