using System.Net;
using GpuFleet.Contracts.Redis;
using GpuFleet.Worker.Api;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace GpuFleet.Worker.Hosting;

/// <summary>
/// Announces this worker in the Redis worker registry (when <see cref="WorkerOptions.Redis"/> is set) so that gateways
/// find it: every 2 s, in one round trip (a script), its entry is written and its heartbeat renewed; on drain (SIGTERM)
/// the entry is removed at once, so gateways drop the worker within their next read instead of at the TTL. While Redis
/// is down the worker keeps serving and keeps trying (the connection reconnects by itself); each change is logged once.
/// </summary>
/// <remarks>
/// The layout is <see cref="WorkerRegistryLayout"/> (src/Contracts/Redis, shared with the gateway; docs/gateway.md).
/// </remarks>
internal sealed class RegistryHeartbeat(
    IOptions<WorkerOptions> options,
    EngineHost engine,
    WorkerLifecycle lifecycle,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILoggerFactory loggerFactory) : BackgroundService
{

    // Redis server time (TIME) scores the heartbeat, so no worker's or gateway's clock matters. KEYS: the sorted set,
    // this worker's hash. ARGV: HTTP URL (the member), gRPC URL, name, model, ready, draining, TTL in ms.
    private static readonly RedisScript BeatScript = new("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        redis.call('HSET', KEYS[2], 'http_url', ARGV[1], 'grpc_url', ARGV[2], 'name', ARGV[3], 'model', ARGV[4],
          'ready', ARGV[5], 'draining', ARGV[6], 'heartbeat_ms', now)
        redis.call('PEXPIRE', KEYS[2], ARGV[7])
        return now
        """);

    private readonly ILogger _logger = loggerFactory.CreateLogger<RegistryHeartbeat>();

    // Completed to beat at once: on connect (re-announce after an outage) and when draining starts (leave at once).
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The HTTP URL gateways reach this worker by: <see cref="WorkerOptions.AdvertiseUrl"/> or one built from Host and HttpPort.</summary>
    internal static string AdvertisedHttpUrl(WorkerOptions worker, string machineName)
    {
        ArgumentNullException.ThrowIfNull(worker);
        return worker.AdvertiseUrl is { } url
            ? url.TrimEnd('/')
            : new UriBuilder(Uri.UriSchemeHttp, ReachableHost(worker.Host, machineName), worker.HttpPort).Uri.GetLeftPart(UriPartial.Authority);
    }

    /// <summary>The gRPC URL: the advertised HTTP URL's scheme and host with <see cref="WorkerOptions.GrpcPort"/>.</summary>
    internal static string AdvertisedGrpcUrl(WorkerOptions worker, string machineName)
    {
        var http = new Uri(AdvertisedHttpUrl(worker, machineName));
        return new UriBuilder(http.Scheme, http.Host, worker.GrpcPort).Uri.GetLeftPart(UriPartial.Authority);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var worker = options.Value;
        if (string.IsNullOrWhiteSpace(worker.Redis))
        {
            return;
        }

        // Announce only once Kestrel listens: a gateway that reads the entry connects to the worker at once.
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            try
            {
                await started.Task.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var machine = Dns.GetHostName();
        var entry = new Entry(AdvertisedHttpUrl(worker, machine), AdvertisedGrpcUrl(worker, machine), worker.Name, worker.EffectiveModelId);
        await using var redis = RedisConnection.Connect(new RedisOptions { Endpoint = worker.Redis }, loggerFactory.CreateLogger<RedisConnection>(), time);
        redis.StateChanged += OnStateChanged;
        await using var onStopping = lifetime.ApplicationStopping.Register(() => Volatile.Read(ref _wake).TrySetResult());
        try
        {
            await BeatUntilRemovedAsync(redis, entry, stoppingToken);
        }
        finally
        {
            redis.StateChanged -= OnStateChanged;
        }
    }

    private async Task BeatUntilRemovedAsync(RedisConnection redis, Entry entry, CancellationToken stoppingToken)
    {
        bool? healthy = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            var wake = Volatile.Read(ref _wake);
            var draining = lifecycle.Draining || lifetime.ApplicationStopping.IsCancellationRequested;
            try
            {
                if (draining)
                {
                    // ZREM first: gateways stop listing the worker even if the DEL were lost.
                    await redis.ExecuteBatchAsync(
                        [new RedisCommand("ZREM", WorkerRegistryLayout.WorkersKey, entry.HttpUrl), new RedisCommand("DEL", WorkerRegistryLayout.EntryKeyPrefix + entry.HttpUrl)],
                        stoppingToken);
                    RegistryLog.Left(_logger, entry.HttpUrl, redis.Endpoint);
                    return;
                }

                (await redis.EvaluateAsync(
                    BeatScript,
                    [WorkerRegistryLayout.WorkersKey, WorkerRegistryLayout.EntryKeyPrefix + entry.HttpUrl],
                    [entry.HttpUrl, entry.GrpcUrl, entry.Name, entry.Model, engine.Ready ? "1" : "0", "0", (long)WorkerRegistryLayout.EntryTtl.TotalMilliseconds],
                    stoppingToken)).EnsureSuccess();
                if (healthy != true)
                {
                    healthy = true;
                    RegistryLog.Registered(_logger, entry.HttpUrl, redis.Endpoint);
                }
            }
            catch (RedisException ex)
            {
                // Before the first connect has finished there is nothing to report yet; later, one line per outage.
                if (healthy != false && !(healthy is null && redis.State == RedisConnectionState.Connecting))
                {
                    healthy = false;
                    RegistryLog.HeartbeatFailing(_logger, redis.Endpoint, ex.Message, draining);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            // A wake-up during the beat above returns at once; one used up is replaced for the next.
            await Task.WhenAny(wake.Task, Task.Delay(WorkerRegistryLayout.Interval, time, stoppingToken));
            if (wake.Task.IsCompleted)
            {
                Interlocked.CompareExchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), wake);
            }
        }
    }

    private void OnStateChanged(object? sender, RedisConnectionStateChangedEventArgs e)
    {
        if (e.Current == RedisConnectionState.Connected)
        {
            Volatile.Read(ref _wake).TrySetResult();
        }
    }

    private static string ReachableHost(string host, string machineName) =>
        IPAddress.TryParse(host, out var address) && (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any)) ? machineName : host;

    private sealed record Entry(string HttpUrl, string GrpcUrl, string Name, string Model);
}

internal static partial class RegistryLog
{
    [LoggerMessage(EventId = 30, EventName = "RegistryRegistered", Level = LogLevel.Information,
        Message = "Registered in the worker registry (Redis at {Endpoint}) as {Url}; heartbeat every 2 s")]
    public static partial void Registered(ILogger logger, string url, string endpoint);

    [LoggerMessage(EventId = 31, EventName = "RegistryHeartbeatFailing", Level = LogLevel.Warning,
        Message = "Worker registry heartbeat to Redis at {Endpoint} failing (draining: {Draining}); serving on, retrying every beat: {Reason}")]
    public static partial void HeartbeatFailing(ILogger logger, string endpoint, string reason, bool draining);

    [LoggerMessage(EventId = 32, EventName = "RegistryLeft", Level = LogLevel.Information,
        Message = "Draining: removed {Url} from the worker registry (Redis at {Endpoint})")]
    public static partial void Left(ILogger logger, string url, string endpoint);
}
