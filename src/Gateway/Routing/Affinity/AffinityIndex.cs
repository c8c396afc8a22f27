using GpuFleet.Gateway.State;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace GpuFleet.Gateway.Routing.Affinity;

/// <summary>
/// The affinity index the router uses: Redis when configured and reachable (shared by the replicas), the in-process
/// store otherwise. The in-process store is always fed too, so when Redis fails (or a lookup is slower than
/// <see cref="RoutingOptions.LookupTimeout"/>) routing goes on from warm local state with no client-visible error.
/// </summary>
internal sealed class AffinityIndex
{
    private readonly InProcessAffinityStore _local;
    private readonly GatewayRedis _redis;
    private readonly PrefixHasher _hasher;
    private readonly RoutingOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<AffinityIndex> _logger;
    private long _fallbacks;

    // Made once the first connect has ended (the multiplexer exists from then on, connected or not).
    private RedisAffinityStore? _store;

    public AffinityIndex(GatewayRedis redis, PrefixHasher hasher, RoutingOptions options, TimeProvider time, ILogger<AffinityIndex> logger)
    {
        ArgumentNullException.ThrowIfNull(redis);
        _redis = redis;
        _hasher = hasher;
        _options = options;
        _time = time;
        _logger = logger;
        _local = new InProcessAffinityStore(options, time);
    }

    /// <summary>Lookups answered locally because Redis was configured but down, slow or failing.</summary>
    public long Fallbacks => Interlocked.Read(ref _fallbacks);

    public InProcessAffinityStore Local => _local;

    public async Task<AffinityLookup> LookupAsync(string model, IReadOnlyList<ulong> blocks, IReadOnlyList<string> workers, string? sessionKey, CancellationToken cancellationToken)
    {
        if (Shared() is { } shared)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.LookupTimeout);
            try
            {
                return await shared.LookupAsync(model, blocks, workers, sessionKey, timeout.Token);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is RedisException or OperationCanceledException or TimeoutException)
            {
                AffinityLog.LookupFellBack(_logger, ex.GetType().Name);
            }
        }

        if (_redis.Configured)
        {
            Interlocked.Increment(ref _fallbacks);
        }

        return await _local.LookupAsync(model, blocks, workers, sessionKey, cancellationToken);
    }

    /// <summary>Records in the background: the response is not held up, and a Redis failure only costs shared affinity.</summary>
    public void Record(string model, IReadOnlyList<ulong> blocks, string worker, string? sessionKey)
    {
        _ = _local.RecordAsync(model, blocks, worker, sessionKey, CancellationToken.None);
        if (Shared() is { } shared)
        {
            _ = WriteAsync(() => shared.RecordAsync(model, blocks, worker, sessionKey, CancellationToken.None));
        }
    }

    /// <summary>Records and waits for the shared (Redis) write: for tools and benchmarks that need it in place.</summary>
    public async Task RecordSharedAsync(string model, IReadOnlyList<ulong> blocks, string worker, string? sessionKey)
    {
        await _local.RecordAsync(model, blocks, worker, sessionKey, CancellationToken.None);
        if (_redis.Configured && await _redis.WhenStartedAsync() is { } multiplexer)
        {
            await Store(multiplexer.GetDatabase()).RecordAsync(model, blocks, worker, sessionKey, CancellationToken.None);
        }
    }

    public async Task ApplyHoldingsAsync(string model, string worker, IReadOnlyList<ulong> held, CancellationToken cancellationToken)
    {
        await _local.ApplyHoldingsAsync(model, worker, held, cancellationToken);
        if (Shared() is { } shared)
        {
            await WriteAsync(() => shared.ApplyHoldingsAsync(model, worker, held, cancellationToken));
        }
    }

    // The shared store while Redis is connected; null sends the caller to local state at once.
    private RedisAffinityStore? Shared() => _redis.Available && _redis.Database is { } database ? Store(database) : null;

    private RedisAffinityStore Store(IDatabaseAsync database) => _store ??= new RedisAffinityStore(database, _hasher, _options, _time);

    private async Task WriteAsync(Func<Task> write)
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
