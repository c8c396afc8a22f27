using GpuFleet.Contracts;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Observability;
using GpuFleet.Gateway.Routing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// The stage before failover: when every worker is full it waits (bounded, <see cref="ForwardingOptions.QueueWait"/>)
/// for room, then answers 429 with a Retry-After from the fleet's measured throughput; when that throughput already
/// says no slot frees within the wait left, it refuses at once. With no worker available at all: 503.
/// </summary>
internal sealed class CapacityWaitMiddleware(
    RequestDelegate next,
    WorkerLoadBoard board,
    WorkerTraffic traffic,
    ForwardingOptions options,
    GatewayMetrics metrics,
    TimeProvider time)
{
    private static readonly TimeSpan FullPoll = TimeSpan.FromMilliseconds(50);

    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            using (metrics.TimeCapacityWait())
            {
                await WaitForRoomAsync(context, context.Features.Get<IReverseProxyFeature>()!);
            }
        }
        catch (GatewayError error) when (!context.Response.HasStarted)
        {
            await error.WriteAsync(context);
            return;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }

        await next(context);
    }

    /// <summary>
    /// When every worker is full, waits (bounded) for room; then 429 with a Retry-After from measured throughput. When
    /// the measured throughput already says a slot will not free within the wait left, refuses at once with that
    /// Retry-After instead of holding the client for the whole wait.
    /// </summary>
    private async Task WaitForRoomAsync(HttpContext context, IReverseProxyFeature proxy)
    {
        if (proxy.AvailableDestinations.Count == 0)
        {
            throw GatewayError.NoWorkerAvailable();
        }

        var deadline = time.GetTimestamp() + (long)(options.QueueWait.TotalSeconds * time.TimestampFrequency);
        while (proxy.AvailableDestinations.All(d => IsFull(d.DestinationId)))
        {
            var predicted = PredictedWait(proxy.AvailableDestinations);
            var left = (double)(deadline - time.GetTimestamp()) / time.TimestampFrequency;
            if (left <= 0 || predicted.Measured && predicted.Seconds > left)
            {
                throw new GatewayError(429, "Every worker is at capacity; retry after the time given in Retry-After.", "rate_limit_exceeded", "fleet_overloaded")
                {
                    RetryAfterSeconds = RetryAfter.Seconds(predicted.Seconds, max: 60),
                };
            }

            await Task.Delay(FullPoll, time, context.RequestAborted);
        }
    }

    /// <summary>Full: its outstanding work (reported, plus what this gateway sent since) fills slots and queue.</summary>
    private bool IsFull(string destination)
    {
        if (board.Get(destination) is not { Status.Engine: { } engine } load || board.IsStale(load))
        {
            return false; // unknown: let the worker decide (it answers 429 itself when full)
        }

        return traffic.Outstanding(destination, engine, load.ReceivedAt).Requests >= engine.TotalSlots + engine.QueueCapacity;
    }

    /// <summary>
    /// Seconds until a slot frees for one more request: the requests queued ahead of it fleet-wide, plus itself, over the
    /// fleet's completion rate (slots over the mean request duration this gateway measured). Measured: false when no
    /// worker's duration is known yet (10 s is assumed for those).
    /// </summary>
    private (double Seconds, bool Measured) PredictedWait(IReadOnlyList<DestinationState> destinations)
    {
        double queued = 1, perSecond = 0;
        var measured = false;
        foreach (var d in destinations)
        {
            if (board.Get(d.DestinationId) is { Status.Engine: { } engine } load)
            {
                var slots = Math.Max(1, (int)engine.TotalSlots);
                queued += Math.Max(0, traffic.Outstanding(d.DestinationId, engine, load.ReceivedAt).Requests - slots);
                var mean = traffic.MeanDuration(d.DestinationId);
                measured |= mean is not null;
                perSecond += slots / Math.Max(0.05, (mean ?? TimeSpan.FromSeconds(10)).TotalSeconds);
            }
        }

        return perSecond <= 0 ? (5, false) : (queued / perSecond, measured);
    }

}
