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
/// accepted it, and takes the usage header of JSON responses.
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
        var routing = context.Features.Get<RoutingState>();
        if (routing is null || transform.ProxyResponse is not { } response)
        {
            return ValueTask.CompletedTask;
        }

        context.Response.Headers[GpuFleetHeaders.Route] = routing.Reason ?? RouteReasons.Fallback;
        var status = (int)response.StatusCode;
        if (status is StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable && routing.MayRetry)
        {
            // Refused before any work: another worker may take it. The client sees nothing of this answer.
            transform.SuppressResponseBody = true;
            routing.RetryRequested = true;
            routing.RetryCause = status == StatusCodes.Status429TooManyRequests ? RetryCause.WorkerAtCapacity : RetryCause.WorkerUnavailable;
            return ValueTask.CompletedTask;
        }

        if (response.Headers.TryGetValues(GpuFleetHeaders.Usage, out var usage) && UsageReport.TryParse(usage.FirstOrDefault(), out var report))
        {
            routing.Usage = report;
        }

        context.Response.Headers.Remove(GpuFleetHeaders.Usage);
        if (status is >= 200 and < 300 && routing.Request is { } request)
        {
            services.GetRequiredService<AffinityIndex>().Record(request.Model, request.Blocks, destination.DestinationId, request.SessionKey);
        }

        return ValueTask.CompletedTask;
    }
}
