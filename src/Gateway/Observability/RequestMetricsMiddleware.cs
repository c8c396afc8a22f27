using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Observability;

/// <summary>
/// The first stage of the proxy pipeline: starts the request's <see cref="RequestObservation"/> and, when every later
/// stage is done (failover included), records what the client experienced through <see cref="GatewayMetrics"/>.
/// </summary>
internal sealed class RequestMetricsMiddleware(RequestDelegate next, GatewayMetrics metrics, TimeProvider time)
{
    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var observation = new RequestObservation(time.GetTimestamp());
        context.Features.Set(observation);
        var failed = false;
        try
        {
            await next(context);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            failed = true; // the catch-all handler answers 500 after this stage
            throw;
        }
        finally
        {
            metrics.ObserveCompleted(context, observation, failed);
        }
    }
}
