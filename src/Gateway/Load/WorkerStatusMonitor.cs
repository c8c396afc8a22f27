using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Destinations;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;

namespace GpuFleet.Gateway.Load;

/// <summary>
/// Watches the status stream of every worker in the <see cref="WorkerDirectory"/>, following it as workers join and
/// leave. A worker is known by its HTTP URL; its <c>/status</c> names the gRPC port, whose
/// <c>WorkerStatusService/Watch</c> then pushes changes. Broken streams reconnect with backoff. Availability changes
/// are applied to YARP at once, so draining workers stop getting new requests; a worker that leaves the directory
/// has its watcher stopped and its entry removed from the <see cref="WorkerLoadBoard"/>.
/// </summary>
internal sealed class WorkerStatusMonitor(
    WorkerDirectory directory,
    WorkerLoadBoard board,
    IProxyStateLookup proxy,
    IClusterDestinationsUpdater destinations,
    TimeProvider time,
    ILogger<WorkerStatusMonitor> logger) : BackgroundService
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(5);

    /// <summary>Idle time on a status connection before the gateway pings the worker (the stream itself may be quiet for 2 s).</summary>
    internal static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(20);

    /// <summary>How long a ping may go unanswered before the connection counts as dead and the stream fails.</summary>
    internal static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(20);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        board.AvailabilityChanged += ApplyAvailability;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var watchers = new Dictionary<string, Watcher>(StringComparer.Ordinal);
        var staleness = CheckStalenessAsync(stoppingToken);
        try
        {
            var set = directory.Current;
            while (true)
            {
                await ReconcileAsync(http, watchers, set, stoppingToken);
                try
                {
                    await set.WaitForNextAsync(stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                set = directory.Current;
            }
        }
        finally
        {
            board.AvailabilityChanged -= ApplyAvailability;
            foreach (var watcher in watchers.Values)
            {
                await watcher.StopAsync();
            }

            await staleness;
        }
    }

    /// <summary>Stops the watchers of workers that left (forgetting them), then starts one per new worker.</summary>
    private async Task ReconcileAsync(HttpClient http, Dictionary<string, Watcher> watchers, WorkerSet set, CancellationToken stoppingToken)
    {
        var wanted = set.Workers.ToDictionary(w => w.Destination, StringComparer.Ordinal);
        foreach (var (destination, watcher) in watchers.ToList())
        {
            if (!wanted.TryGetValue(destination, out var worker) || worker.Url != watcher.Url)
            {
                // Awaited before the board forgets it, so a late update from this watcher cannot bring it back.
                await watcher.StopAsync();
                watchers.Remove(destination);
                board.Remove(destination);
                GatewayLoadLog.WatchStopped(logger, destination);
            }
        }

        foreach (var (destination, worker) in wanted)
        {
            if (!watchers.ContainsKey(destination))
            {
                var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                watchers[destination] = new Watcher(worker.Url, stop, WatchAsync(http, worker.Url, stop.Token));
                GatewayLoadLog.WatchStarted(logger, destination, worker.Source.ToString());
            }
        }
    }

    private async Task WatchAsync(HttpClient http, string url, CancellationToken stoppingToken)
    {
        // Start on a worker thread: the caller is reconciling and must not run the first request inline.
        await Task.Yield();
        var worker = new Uri(url);
        var destination = WorkerProxyConfigProvider.DestinationId(url);
        var retry = FirstRetry;
        var connected = false;
        // One channel per worker, kept across reconnects (it reconnects by itself) and replaced only when the
        // worker reports another gRPC address; disposed when the worker leaves.
        GrpcChannel? channel = null;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    var first = WorkerStatus.Parser.ParseJson(await http.GetStringAsync(new Uri(worker, "/status"), stoppingToken));
                    board.Update(destination, first);
                    var address = GrpcAddress(worker, first.GrpcAddress);
                    if (channel is null || channel.Target != address.Authority)
                    {
                        channel?.Dispose();
                        channel = CreateChannel(address);
                    }

                    var client = new WorkerStatusService.WorkerStatusServiceClient(channel);
                    using var call = client.Watch(new WatchStatusRequest(), cancellationToken: stoppingToken);
                    await foreach (var status in call.ResponseStream.ReadAllAsync(stoppingToken))
                    {
                        board.Update(destination, status);
                        retry = FirstRetry;
                        if (!connected)
                        {
                            connected = true;
                            GatewayLoadLog.StatusConnected(logger, destination, status.Name);
                        }
                    }

                    throw new RpcException(new Status(StatusCode.Unavailable, "The status stream ended."));
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ex is HttpRequestException or RpcException or TaskCanceledException or Google.Protobuf.InvalidProtocolBufferException or Google.Protobuf.InvalidJsonException or InvalidOperationException)
                {
                    board.MarkDisconnected(destination);
                    if (connected)
                    {
                        connected = false;
                        GatewayLoadLog.StatusLost(logger, destination, ex is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : ex.Message);
                    }
                }
                catch (Exception ex) when (stoppingToken.IsCancellationRequested && ex is OperationCanceledException or RpcException or HttpRequestException)
                {
                    return;
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
        finally
        {
            channel?.Dispose();
        }
    }

    /// <summary>A cleartext HTTP/2 (h2c) channel to one worker's gRPC port, pinging it while idle.</summary>
    private static GrpcChannel CreateChannel(Uri address) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            KeepAlivePingDelay = KeepAlivePingDelay,
            KeepAlivePingTimeout = KeepAlivePingTimeout,
            // The status stream is the only call and may be quiet between heartbeats: ping while it is open.
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            ConnectTimeout = TimeSpan.FromSeconds(5),
        },
        DisposeHttpClient = true,
    });

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
        foreach (var id in (string[])[WorkerProxyConfigProvider.ClusterId, WorkerProxyConfigProvider.GrpcClusterId])
        {
            if (proxy.TryGetCluster(id, out var cluster))
            {
                destinations.UpdateAvailableDestinations(cluster);
            }
        }
    }

    /// <summary>One worker's status watch: stopping it cancels the watch and waits until it has ended.</summary>
    private sealed record Watcher(string Url, CancellationTokenSource Stop, Task Task)
    {
        public async Task StopAsync()
        {
            await Stop.CancelAsync();
            await Task;
            Stop.Dispose();
        }
    }
}

internal static partial class GatewayLoadLog
{
    [LoggerMessage(EventId = 100, EventName = "StatusConnected", Level = LogLevel.Information, Message = "Watching worker {Destination} ({Name})")]
    public static partial void StatusConnected(ILogger logger, string destination, string name);

    [LoggerMessage(EventId = 101, EventName = "StatusLost", Level = LogLevel.Warning, Message = "Lost the status stream of worker {Destination}: {Reason}; reconnecting")]
    public static partial void StatusLost(ILogger logger, string destination, string reason);

    [LoggerMessage(EventId = 102, EventName = "WatchStarted", Level = LogLevel.Information, Message = "Worker {Destination} joined (from {Source}); watching its status")]
    public static partial void WatchStarted(ILogger logger, string destination, string source);

    [LoggerMessage(EventId = 103, EventName = "WatchStopped", Level = LogLevel.Information, Message = "Worker {Destination} left the worker set; stopped watching it")]
    public static partial void WatchStopped(ILogger logger, string destination);
}
