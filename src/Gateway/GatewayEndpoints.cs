using GpuFleet.Gateway.Auth;
using GpuFleet.Gateway.Forwarding;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Observability;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.AspNetCore.Builder;

/// <summary>The gateway's request pipeline and endpoints.</summary>
public static class GatewayEndpoints
{
    /// <summary>
    /// API-key authentication for everything but the operations endpoints, then the OpenAI API proxied to the workers
    /// through GpuFleet's forwarding (inspection, affinity, admission, failover, timeouts) and the time-to-first-token
    /// policy; <c>/healthz</c>, <c>/readyz</c> (some worker available), <c>/metrics</c>, <c>/workers</c> and the live
    /// fleet page <c>/fleet</c> (with <c>/fleet.json</c>).
    /// </summary>
    public static WebApplication MapGpuFleetGateway(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // The one catch-all (GatewayExceptionHandler): an unexpected exception becomes a 500 in the API's shape.
        app.UseExceptionHandler();
        app.UseMiddleware<ApiKeyAuthenticationMiddleware>();
        app.MapReverseProxy(proxy =>
        {
            proxy.UseMiddleware<RequestMetricsMiddleware>();
            // GpuFleet's stages, each owning its part: the request's body, inspection, limits and affinity; the bounded
            // wait for room; failover across attempts (YARP's load balancing and forwarding run once per attempt).
            proxy.UseMiddleware<RequestInspectionMiddleware>();
            proxy.UseMiddleware<CapacityWaitMiddleware>();
            proxy.UseMiddleware<FailoverMiddleware>();
            proxy.UseLoadBalancing();
            proxy.UseMiddleware<ChosenWorkerMiddleware>();
            // Each attempt (the failover stage may make several) reports its outcome to passive health.
            proxy.UsePassiveHealthChecks();
        });
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", (WorkerLoadBoard board) => board.All.Any(l => board.IsAvailable(l.Destination))
            ? Results.Text("ready") : Results.Text("no worker available", statusCode: StatusCodes.Status503ServiceUnavailable));
        // The gateway's instruments exist from GatewayMetrics' construction on: build it now so the first scrape sees them.
        _ = app.Services.GetRequiredService<GatewayMetrics>();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/workers", WorkersEndpoint.WriteAsync);
        app.MapGet("/fleet", FleetPage.WriteHtmlAsync);
        app.MapGet("/fleet.json", FleetPage.WriteJsonAsync);
        app.MapFallback(context => new GatewayError(404, $"No endpoint {context.Request.Method} {context.Request.Path}.", "invalid_request_error", "not_found").WriteAsync(context));
        return app;
    }
}
