using GpuFleet.Contracts.Redis;
using GpuFleet.Gateway.State;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.Routing.Affinity;

/// <summary>
/// The affinity index the router uses: Redis when configured and reachable (shared by the replicas), the in-process
/// store otherwise. The in-process store is always fed too, so when Redis fails (or a lookup is slower than
/// <see cref="RoutingOptions.LookupTimeout"/>) routing goes on from warm local state with no client-visible error.
/// </summary>
public sealed class AffinityIndex
{
    private readonly InProcessAffinityStore _local;
    private readonly RedisAffinityStore? _shared;
    private readonly GatewayRedis _redis;
    private readonly RoutingOptions _options;
    private readonly ILogger<AffinityIndex> _logger;
    private long _fallbacks;

    public AffinityIndex(GatewayRedis redis, PrefixHasher hasher, RoutingOptions options, TimeProvider time, ILogger<AffinityIndex> logger)
    {
        ArgumentNullException.ThrowIfNull(redis);
        _redis = redis;
        _options = options;
        _logger = logger;
        _local = new InProcessAffinityStore(options, time);
        _shared = redis.Connection is { } connection ? new RedisAffinityStore(connection, hasher, options, time) : null;
    }

    /// <summary>Lookups answered locally because Redis was configured but down, slow or failing.</summary>
    public long Fallbacks => Interlocked.Read(ref _fallbacks);

    public InProcessAffinityStore Local => _local;

    public async Task<AffinityLookup> LookupAsync(string model, IReadOnlyList<ulong> blocks, IReadOnlyList<string> workers, string? sessionKey, CancellationToken cancellationToken)
    {
        if (_shared is not null && _redis.Available)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.LookupTimeout);
            try
            {
                return await _shared.LookupAsync(model, blocks, workers, sessionKey, timeout.Token);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is RedisException or OperationCanceledException or TimeoutException)
            {
                AffinityLog.LookupFellBack(_logger, ex.GetType().Name);
            }
        }

        if (_shared is not null)
        {
            Interlocked.Increment(ref _fallbacks);
        }

        return await _local.LookupAsync(model, blocks, workers, sessionKey, cancellationToken);
    }

    /// <summary>Records in the background: the response is not held up, and a Redis failure only costs shared affinity.</summary>
    public void Record(string model, IReadOnlyList<ulong> blocks, string worker, string? sessionKey)
    {
        _ = _local.RecordAsync(model, blocks, worker, sessionKey, CancellationToken.None);
        if (_shared is not null && _redis.Available)
        {
            _ = Shared(() => _shared.RecordAsync(model, blocks, worker, sessionKey, CancellationToken.None));
        }
    }

    /// <summary>Records and waits for the shared (Redis) write: for tools and benchmarks that need it in place.</summary>
    public async Task RecordSharedAsync(string model, IReadOnlyList<ulong> blocks, string worker, string? sessionKey)
    {
        await _local.RecordAsync(model, blocks, worker, sessionKey, CancellationToken.None);
        if (_shared is not null)
        {
            await _shared.RecordAsync(model, blocks, worker, sessionKey, CancellationToken.None);
        }
    }

    public async Task ApplyHoldingsAsync(string model, string worker, IReadOnlyList<ulong> held, CancellationToken cancellationToken)
    {
        await _local.ApplyHoldingsAsync(model, worker, held, cancellationToken);
        if (_shared is not null && _redis.Available)
        {
            await Shared(() => _shared.ApplyHoldingsAsync(model, worker, held, cancellationToken));
        }
    }

    private async Task Shared(Func<Task> write)
    {
        try
        {
            await write();
        }
        catch (Exception ex) when (ex is RedisException or OperationCanceledException or TimeoutException)
        {
            AffinityLog.WriteFailed(_logger, ex.GetType().Name);
        }
    }
}

internal static partial class AffinityLog
{
    [LoggerMessage(EventId = 300, EventName = "AffinityLookupFellBack", Level = LogLevel.Debug, Message = "Affinity lookup answered locally: Redis {Error}")]
    public static partial void LookupFellBack(ILogger logger, string error);

    [LoggerMessage(EventId = 301, EventName = "AffinityWriteFailed", Level = LogLevel.Debug, Message = "Affinity write to Redis failed: {Error}")]
    public static partial void WriteFailed(ILogger logger, string error);
}
