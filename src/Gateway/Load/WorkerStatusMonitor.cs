using GpuFleet.Contracts;
using GpuFleet.Contracts.Grpc;
using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Destinations;
using GpuFleet.Gateway.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;

namespace GpuFleet.Gateway.Load;

/// <summary>
/// Watches every worker's status stream. A worker is known by its HTTP URL; its <c>/status</c> names the gRPC
/// port, whose <c>WorkerStatusService/Watch</c> then pushes changes. Broken streams reconnect with backoff.
/// Availability changes are applied to YARP at once, so draining workers stop getting new requests.
/// </summary>
internal sealed class WorkerStatusMonitor(
    IOptions<GatewayOptions> options,
    WorkerLoadBoard board,
    IProxyStateLookup proxy,
    IClusterDestinationsUpdater destinations,
    TimeProvider time,
    ILogger<WorkerStatusMonitor> logger) : BackgroundService
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        board.AvailabilityChanged += ApplyAvailability;
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var watchers = options.Value.Workers.Select(url => WatchAsync(http, url, stoppingToken)).ToList();
            watchers.Add(CheckStalenessAsync(stoppingToken));
            await Task.WhenAll(watchers);
        }
        finally
        {
            board.AvailabilityChanged -= ApplyAvailability;
        }
    }

    private async Task WatchAsync(HttpClient http, string url, CancellationToken stoppingToken)
    {
        var worker = new Uri(url);
        var destination = StaticWorkerProxyConfig.DestinationId(url);
        var retry = FirstRetry;
        var connected = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var first = WorkerStatus.Parser.ParseJson(await http.GetStringAsync(new Uri(worker, "/status"), stoppingToken));
                board.Update(destination, first);
                using var grpc = GrpcCallInvoker.Create(GrpcAddress(worker, first.GrpcAddress), timeProvider: time);
                await foreach (var status in grpc.ServerStreamingAsync(GpuFleetMethods.WatchStatus, new WatchStatusRequest(), WorkerStatus.Parser, cancellationToken: stoppingToken))
                {
                    board.Update(destination, status);
                    retry = FirstRetry;
                    if (!connected)
                    {
                        connected = true;
                        GatewayLoadLog.StatusConnected(logger, destination, status.Name);
                    }
                }

                throw new GrpcException(GrpcStatusCode.Unavailable, "The status stream ended.");
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ex is HttpRequestException or GrpcException or TaskCanceledException or Google.Protobuf.InvalidProtocolBufferException or InvalidOperationException)
            {
                board.MarkDisconnected(destination);
                if (connected)
                {
                    connected = false;
                    GatewayLoadLog.StatusLost(logger, destination, ex.Message);
                }
            }

            try
            {
                await Task.Delay(retry, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, MaxRetry.Ticks));
        }
    }

    /// <summary>A worker binds 0.0.0.0 in a container: keep the host the gateway reaches it by, take the gRPC port.</summary>
    internal static Uri GrpcAddress(Uri worker, string reported) =>
        Uri.TryCreate(reported, UriKind.Absolute, out var grpc) ? new UriBuilder(worker) { Port = grpc.Port, Path = "/" }.Uri
            : throw new InvalidOperationException($"The worker at {worker} reported no usable gRPC address.");

    private async Task CheckStalenessAsync(CancellationToken stoppingToken)
    {
        var available = new HashSet<string>(StringComparer.Ordinal);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                board.CheckStaleness(available);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private void ApplyAvailability()
    {
        if (proxy.TryGetCluster(StaticWorkerProxyConfig.ClusterId, out var cluster))
        {
            destinations.UpdateAvailableDestinations(cluster);
        }
    }
}

internal static partial class GatewayLoadLog
{
    [LoggerMessage(EventId = 100, EventName = "StatusConnected", Level = LogLevel.Information, Message = "Watching worker {Destination} ({Name})")]
    public static partial void StatusConnected(ILogger logger, string destination, string name);

    [LoggerMessage(EventId = 101, EventName = "StatusLost", Level = LogLevel.Warning, Message = "Lost the status stream of worker {Destination}: {Reason}; reconnecting")]
    public static partial void StatusLost(ILogger logger, string destination, string reason);
}
