using System.Net;
using GpuFleet.Contracts;
using GpuFleet.Worker.Api;
using GpuFleet.Worker.Engine;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace GpuFleet.Worker.Hosting;

/// <summary>
/// Announces this worker in the Redis worker registry (when <see cref="WorkerOptions.Redis"/> is set) so that gateways
/// find it: every 2 s, in one round trip (a script), its entry is written and its heartbeat renewed; on drain (SIGTERM)
/// the entry is removed at once, so gateways drop the worker within their next read instead of at the TTL. While Redis
/// is down the worker keeps serving and keeps trying (the process's one StackExchange.Redis multiplexer connects in the
/// background and reconnects by itself; beats while it is down fail at once); each change is logged once.
/// </summary>
/// <remarks>
/// The layout is <see cref="WorkerRegistryLayout"/> (src/Contracts, shared with the gateway; docs/gateway.md).
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
    private const string BeatScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        redis.call('HSET', KEYS[2], 'http_url', ARGV[1], 'grpc_url', ARGV[2], 'name', ARGV[3], 'model', ARGV[4],
          'ready', ARGV[5], 'draining', ARGV[6], 'heartbeat_ms', now)
        redis.call('PEXPIRE', KEYS[2], ARGV[7])
        return now
        """;

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
        // Validated at start (WorkerOptions.Validate), so this parses.
        var settings = RedisSettings.Parse(worker.Redis, RedisSettings.WorkerKey, []) ?? throw new InvalidOperationException("Worker:Redis does not parse.");
        var endpoints = RedisSettings.Describe(settings);
        await using var onStopping = lifetime.ApplicationStopping.Register(() => Volatile.Read(ref _wake).TrySetResult());

        // With Redis down ConnectAsync returns only after the connect timeout, with a multiplexer that keeps retrying;
        // the worker serves meanwhile (this runs beside Kestrel), and a drain during the wait still removes the entry.
        await using var redis = await ConnectionMultiplexer.ConnectAsync(settings).WaitAsync(stoppingToken);
        redis.ConnectionRestored += OnConnectionRestored;
        try
        {
            if (!redis.IsConnected)
            {
                RegistryLog.ConnectPending(_logger, endpoints);
            }

            await BeatUntilRemovedAsync(redis.GetDatabase(), endpoints, () => redis.IsConnected, entry, stoppingToken);
        }
        finally
        {
            redis.ConnectionRestored -= OnConnectionRestored;
        }
    }

    private async Task BeatUntilRemovedAsync(IDatabaseAsync redis, string endpoints, Func<bool> connected, Entry entry, CancellationToken stoppingToken)
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
                    // Both sent before either reply is awaited (one round trip); ZREM first: gateways stop listing the
                    // worker even if the DEL were lost.
                    var removed = redis.SortedSetRemoveAsync(WorkerRegistryLayout.WorkersKey, entry.HttpUrl);
                    var deleted = redis.KeyDeleteAsync(WorkerRegistryLayout.EntryKeyPrefix + entry.HttpUrl);
                    await Task.WhenAll(removed, deleted).WaitAsync(stoppingToken);
                    RegistryLog.Left(_logger, entry.HttpUrl, endpoints);
                    return;
                }

                await redis.ScriptEvaluateAsync(
                    BeatScript,
                    [WorkerRegistryLayout.WorkersKey, WorkerRegistryLayout.EntryKeyPrefix + entry.HttpUrl],
                    [entry.HttpUrl, entry.GrpcUrl, entry.Name, entry.Model, engine.Ready ? "1" : "0", "0", (long)WorkerRegistryLayout.EntryTtl.TotalMilliseconds]).WaitAsync(stoppingToken);
                if (healthy != true)
                {
                    healthy = true;
                    RegistryLog.Registered(_logger, entry.HttpUrl, endpoints);
                }
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                // Not yet connected after the first connect gave up was logged as ConnectPending; later, one line per outage.
                if (healthy == true || (healthy is null && connected()))
                {
                    healthy = false;
                    RegistryLog.HeartbeatFailing(_logger, endpoints, ex.Message, draining);
                }
                else
                {
                    healthy ??= false;
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

    // A (re)connect beats at once: the worker re-announces itself after an outage without waiting for its next beat.
    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e) => Volatile.Read(ref _wake).TrySetResult();

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

    [LoggerMessage(EventId = 33, EventName = "RegistryRedisConnectPending", Level = LogLevel.Warning,
        Message = "Worker registry: Redis at {Endpoint} is not reachable yet; serving on and connecting in the background")]
    public static partial void ConnectPending(ILogger logger, string endpoint);
}
