using System.Collections.Concurrent;
using GpuFleet.Gateway.State;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace GpuFleet.Gateway.Auth;

/// <summary>
/// Per-key requests-per-minute and tokens-per-minute limits, shared by every gateway replica through Redis.
/// </summary>
/// <remarks>
/// <para>
/// Each limit is a GCRA bucket (<see cref="Gcra"/>): one number per key and limit. With Redis, one acquire is one
/// round trip: a Lua script reads both limits, decides, and counts the request only when both allow it, atomically,
/// so concurrent replicas cannot overshoot together. The counters are named <c>gpufleet:limit:{NAME}:rpm</c> and
/// <c>gpufleet:limit:{NAME}:tpm</c> (the key's name, which is not secret; the braces keep one key's counters in one
/// Redis Cluster slot), hold the bucket's theoretical arrival time in Unix microseconds, and expire once the bucket
/// is empty.
/// </para>
/// <para>
/// Time is this replica's clock (<see cref="TimeProvider"/>), so replicas need synchronised clocks (NTP): a skew of
/// a second shifts a second's worth of capacity, nothing more.
/// </para>
/// <para>
/// Without Redis, while it is down, or when a command fails or times out (after the
/// command timeout, 1 s by default, at most), the same algorithm runs in process: the limits then hold per replica, the client sees no error, and
/// the change is logged once each way. After a failed command Redis is left alone for <see cref="RedisRetryDelay"/>,
/// so a Redis that stops answering costs one request a timeout now and then, not every request. Keys without
/// limits never reach this class's counters or Redis.
/// </para>
/// </remarks>
internal sealed class KeyRateLimiter
{
    /// <summary>The limits are per minute: a key may use its whole limit at once, then gets it back over a minute.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMicroseconds(Gcra.WindowUs);

    /// <summary>
    /// After a Redis command fails, how long acquires skip Redis and decide locally. A Redis that stops answering
    /// without closing the connection (a paused server, a partition) would otherwise cost every limited request a
    /// whole command timeout until TCP gives up; this way one request in this interval pays it, as a probe.
    /// </summary>
    public static readonly TimeSpan RedisRetryDelay = TimeSpan.FromSeconds(5);

    internal const string KeyPrefix = "gpufleet:limit:";

    // Counters outlive the moment their bucket empties by this much, for replicas whose clocks run a little behind.
    private const long ExpirySlackMs = 10_000;

    // KEYS: rpm TAT, tpm TAT. ARGV: window us, now us, rpm (0 = none), tpm (0 = none), estimated tokens, slack ms.
    // Returns {allowed, rpm TAT, tpm TAT} as read before counting (0 = none). Same arithmetic as Gcra, in the same order.
    private const string AcquireScript = """
        local w = tonumber(ARGV[1])
        local now = tonumber(ARGV[2])
        local rpm = tonumber(ARGV[3])
        local tpm = tonumber(ARGV[4])
        local cost = tonumber(ARGV[5])
        local slack = tonumber(ARGV[6])
        local rt, tt = 0, 0
        local allowed = 1
        if rpm > 0 then
          rt = tonumber(redis.call('GET', KEYS[1]) or '0')
          if math.max(rt, now) + 1 * (w / rpm) - now > w then allowed = 0 end
        end
        if tpm > 0 then
          tt = tonumber(redis.call('GET', KEYS[2]) or '0')
          if math.max(tt, now) + cost * (w / tpm) - now > w then allowed = 0 end
        end
        if allowed == 1 then
          if rpm > 0 then
            local tat = math.floor(math.max(rt, now) + 1 * (w / rpm))
            redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + slack)
          end
          if tpm > 0 and cost > 0 then
            local tat = math.floor(math.max(tt, now) + cost * (w / tpm))
            redis.call('SET', KEYS[2], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + slack)
          end
        end
        return {allowed, rt, tt}
        """;

    // KEYS: tpm TAT. ARGV: window us, now us, tpm, actual - estimated tokens, slack ms. Moves the TAT by the
    // difference; an overestimate given back empties the bucket at most.
    private const string SettleScript = """
        local w = tonumber(ARGV[1])
        local now = tonumber(ARGV[2])
        local tpm = tonumber(ARGV[3])
        local delta = tonumber(ARGV[4])
        local slack = tonumber(ARGV[5])
        local tt = tonumber(redis.call('GET', KEYS[1]) or '0')
        local tat = math.floor(math.max(tt, now) + delta * (w / tpm))
        if tat <= now then
          redis.call('DEL', KEYS[1])
        else
          redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + slack)
        end
        return 1
        """;

    private readonly GatewayRedis _redis;
    private readonly TimeProvider _time;
    private readonly ILogger<KeyRateLimiter> _logger;
    private readonly ConcurrentDictionary<string, LocalCounters> _local = new(StringComparer.Ordinal);
    private int _usingLocal;
    private long _skipRedisUntil;

    public KeyRateLimiter(GatewayRedis redis, TimeProvider time, ILogger<KeyRateLimiter> logger)
    {
        ArgumentNullException.ThrowIfNull(redis);
        _redis = redis;
        _time = time;
        _logger = logger;
        if (!redis.Configured)
        {
            AuthLog.LimitsLocalOnly(logger);
        }
    }

    /// <summary>
    /// Counts one request and its estimated tokens against the key's limits when both fit, else refuses (and counts
    /// nothing). Never fails for Redis's sake; only <paramref name="cancellationToken"/> ends it early.
    /// </summary>
    public async ValueTask<RateLimitDecision> AcquireAsync(ApiKeyIdentity key, int estimatedTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentOutOfRangeException.ThrowIfNegative(estimatedTokens);
        if (!key.HasLimits)
        {
            return RateLimitDecision.Unlimited;
        }

        // A request whose estimate alone exceeds the tokens limit goes the same way: it cannot fit, so it is refused
        // without being counted, with headers that show the key's real state.
        var now = NowUs();
        if (UseRedis() is { } database)
        {
            try
            {
                var reply = await database.ScriptEvaluateAsync(
                    AcquireScript,
                    [CounterKey(key.Name, "rpm"), CounterKey(key.Name, "tpm")],
                    [Gcra.WindowUs, now, key.RequestsPerMinute ?? 0, key.TokensPerMinute ?? 0, estimatedTokens, ExpirySlackMs]).WaitAsync(cancellationToken);
                var values = reply.IsNull ? throw new RedisException("The limit script returned a null array.") : (RedisResult[])reply!;
                RedisUsed();
                return Gcra.Decide((long)values[0] == 1, key.RequestsPerMinute, (long)values[1], key.TokensPerMinute, (long)values[2], estimatedTokens, now);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                RedisFailed(ex);
            }
        }
        else if (_redis.Degraded)
        {
            LocalUsed("not connected");
        }

        return Local(key.Name).Acquire(key, estimatedTokens, now);
    }

    /// <summary>
    /// Corrects the tokens counted by <see cref="AcquireAsync"/> once the real usage is known: an underestimate adds
    /// the difference to the key's tokens bucket (which may then hold more than a minute's worth, delaying the key's
    /// next requests accordingly), an overestimate gives it back (emptying the bucket at most). Redis errors are
    /// swallowed like in <see cref="AcquireAsync"/>: a lost correction only skews one minute of one key.
    /// </summary>
    public async ValueTask SettleAsync(ApiKeyIdentity key, int estimatedTokens, int actualTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentOutOfRangeException.ThrowIfNegative(estimatedTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(actualTokens);
        var delta = (long)actualTokens - estimatedTokens;
        if (key.TokensPerMinute is not { } tpm || delta == 0)
        {
            return;
        }

        var now = NowUs();
        if (UseRedis() is { } database)
        {
            try
            {
                await database.ScriptEvaluateAsync(
                    SettleScript,
                    [CounterKey(key.Name, "tpm")],
                    [Gcra.WindowUs, now, tpm, delta, ExpirySlackMs]).WaitAsync(cancellationToken);
                RedisUsed();
                return;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                RedisFailed(ex);
            }
        }

        Local(key.Name).Settle(tpm, delta, now);
    }

    private static string CounterKey(string name, string limit) => $"{KeyPrefix}{{{name}}}:{limit}";

    private long NowUs() => (_time.GetUtcNow().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;

    private LocalCounters Local(string name) => _local.GetOrAdd(name, static _ => new LocalCounters());

    // The database while Redis is connected and not in its retry pause; null means decide locally.
    private IDatabaseAsync? UseRedis() =>
        _redis.Available && _time.GetTimestamp() >= Volatile.Read(ref _skipRedisUntil) ? _redis.Database : null;

    private void RedisUsed()
    {
        if (Volatile.Read(ref _usingLocal) != 0 && Interlocked.Exchange(ref _usingLocal, 0) != 0)
        {
            AuthLog.LimitsRedisRestored(_logger);
        }
    }

    private void RedisFailed(Exception error)
    {
        Volatile.Write(ref _skipRedisUntil, _time.GetTimestamp() + (long)(RedisRetryDelay.TotalSeconds * _time.TimestampFrequency));
        LocalUsed(error.Message);
    }

    private void LocalUsed(string reason)
    {
        if (Volatile.Read(ref _usingLocal) == 0 && Interlocked.Exchange(ref _usingLocal, 1) == 0)
        {
            AuthLog.LimitsRedisUnavailable(_logger, reason);
        }
    }

    // One key's buckets in this process: the fallback, and the only state when no Redis is configured.
    private sealed class LocalCounters
    {
        private readonly Lock _lock = new();
        private long _requestsTat;
        private long _tokensTat;

        public RateLimitDecision Acquire(ApiKeyIdentity key, int cost, long now)
        {
            lock (_lock)
            {
                var allowed = (key.RequestsPerMinute is not { } rpm || Gcra.Fits(rpm, _requestsTat, 1, now))
                    && (key.TokensPerMinute is not { } tpm || Gcra.Fits(tpm, _tokensTat, cost, now));
                var decision = Gcra.Decide(allowed, key.RequestsPerMinute, _requestsTat, key.TokensPerMinute, _tokensTat, cost, now);
                if (allowed)
                {
                    _requestsTat = key.RequestsPerMinute is { } requestLimit ? Gcra.Add(requestLimit, _requestsTat, 1, now) : 0;
                    _tokensTat = key.TokensPerMinute is { } tokenLimit && cost > 0 ? Gcra.Add(tokenLimit, _tokensTat, cost, now) : _tokensTat;
                }

                return decision;
            }
        }

        public void Settle(int tpm, long delta, long now)
        {
            lock (_lock)
            {
                _tokensTat = Math.Max(0, Gcra.Add(tpm, _tokensTat, delta, now));
            }
        }
    }
}
