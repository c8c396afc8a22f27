using System.Collections.Concurrent;
using System.Globalization;
using StackExchange.Redis;

namespace GpuFleet.Gateway.Routing.Affinity;

/// <summary>
/// The affinity index in Redis, shared by every gateway replica. Layout (all keys expire):
/// <c>gpufleet:aff:{model tag}:{block hex}</c> hash worker → last confirmed (unix ms);
/// <c>gpufleet:held:{model tag}:{worker}</c> set of the block keys recorded for a worker (for corrections);
/// <c>gpufleet:sess:{session tag}</c> the session's worker. Tags and block hashes are keyed hashes: nothing in
/// Redis reveals a prompt. Every operation is one script call (one round trip: StackExchange.Redis loads each script once and then sends
/// EVALSHA, reloading it by itself after a Redis restart or SCRIPT FLUSH). Scripts name block keys they derive
/// from a prefix, so they suit a standalone or Sentinel Redis, not Redis Cluster.
/// </summary>
internal sealed class RedisAffinityStore(IDatabaseAsync redis, PrefixHasher hasher, RoutingOptions options, TimeProvider time) : IAffinityStore
{
    private const int MaxCachedModels = 1024;
    private readonly ConcurrentDictionary<string, string> _blockPrefixes = new(StringComparer.Ordinal);

    // Depth per worker by bisection over the chain (holdings are prefix-closed), then the session's worker. A worker's
    // entry counts only while confirmed within the TTL (the key itself lives on while other workers confirm it).
    // ARGV: block count, oldest valid confirmation (unix ms), workers...
    private const string Lookup = """
        local n = tonumber(ARGV[1])
        local oldest = tonumber(ARGV[2])
        local out = {}
        for w = 3, #ARGV do
          local lo, hi = 0, n
          while lo < hi do
            local mid = math.floor((lo + hi + 1) / 2)
            local at = tonumber(redis.call('HGET', KEYS[mid], ARGV[w]) or '0') or 0
            if at >= oldest then lo = mid else hi = mid - 1 end
          end
          out[#out + 1] = lo
        end
        if #KEYS > n then
          out[#out + 1] = redis.call('GET', KEYS[n + 1])
        end
        return out
        """;

    // KEYS: block keys..., held-set key[, session key]. ARGV: worker, now ms, ttl ms, block count.
    private const string Record = """
        local worker, now, ttl, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
        local held = KEYS[n + 1]
        for i = 1, n do
          redis.call('HSET', KEYS[i], worker, now)
          redis.call('PEXPIRE', KEYS[i], ttl)
          redis.call('SADD', held, KEYS[i])
        end
        redis.call('PEXPIRE', held, ttl)
        if #KEYS > n + 1 then
          redis.call('SET', KEYS[n + 2], worker, 'PX', ARGV[5])
        end
        return n
        """;

    // KEYS: held-set key. ARGV: worker, now ms, grace ms, ttl ms, block key prefix, block hex...
    private const string Correct = """
        local worker, now, grace, ttl, prefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
        local keep = {}
        for i = 6, #ARGV do keep[prefix .. ARGV[i]] = true end
        local dropped = 0
        for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
          if not keep[key] then
            local at = tonumber(redis.call('HGET', key, worker) or '0') or 0
            if now - at >= grace then
              redis.call('HDEL', key, worker)
              redis.call('SREM', KEYS[1], key)
              dropped = dropped + 1
            end
          end
        end
        for key, _ in pairs(keep) do
          redis.call('HSET', key, worker, now)
          redis.call('PEXPIRE', key, ttl)
          redis.call('SADD', KEYS[1], key)
        end
        redis.call('PEXPIRE', KEYS[1], ttl)
        return dropped
        """;

    public async Task<AffinityLookup> LookupAsync(string model, IReadOnlyList<ulong> blocks, IReadOnlyList<string> workers, string? sessionKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        ArgumentNullException.ThrowIfNull(workers);
        var prefix = BlockPrefix(model);
        var keys = new RedisKey[blocks.Count + (sessionKey is null ? 0 : 1)];
        for (var i = 0; i < blocks.Count; i++)
        {
            keys[i] = BlockKey(prefix, blocks[i]);
        }

        if (sessionKey is not null)
        {
            keys[^1] = SessionKey(sessionKey);
        }

        var args = new RedisValue[workers.Count + 2];
        args[0] = blocks.Count;
        args[1] = Now() - (long)options.AffinityTtl.TotalMilliseconds + 1;
        for (var i = 0; i < workers.Count; i++)
        {
            args[2 + i] = workers[i];
        }

        // The library takes no token: a caller that stops waiting leaves the reply to be dropped when it comes.
        var reply = await redis.ScriptEvaluateAsync(Lookup, keys, args).WaitAsync(cancellationToken);
        var items = reply.IsNull ? [] : (RedisResult[])reply!;
        var held = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < workers.Count && i < items.Length; i++)
        {
            held[workers[i]] = (int)items[i];
        }

        var session = sessionKey is not null && items.Length > workers.Count ? OptionalString(items[workers.Count]) : null;
        return new AffinityLookup(held, string.IsNullOrEmpty(session) ? null : session);
    }

    public async Task RecordAsync(string model, IReadOnlyList<ulong> blocks, string worker, string? sessionKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        var prefix = BlockPrefix(model);
        var keys = new List<RedisKey>(blocks.Count + 2);
        keys.AddRange(blocks.Select(b => (RedisKey)BlockKey(prefix, b)));
        keys.Add(HeldKey(model, worker));
        var args = new List<RedisValue> { worker, Now(), (long)options.AffinityTtl.TotalMilliseconds, blocks.Count };
        if (sessionKey is not null && options.SessionStickiness)
        {
            keys.Add(SessionKey(sessionKey));
            args.Add((long)options.SessionTtl.TotalMilliseconds);
        }

        await redis.ScriptEvaluateAsync(Record, [.. keys], [.. args]).WaitAsync(cancellationToken);
    }

    public async Task ApplyHoldingsAsync(string model, string worker, IReadOnlyList<ulong> held, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(held);
        var args = new List<RedisValue>(held.Count + 5)
        {
            worker, Now(), (long)options.HoldingsGrace.TotalMilliseconds, (long)options.AffinityTtl.TotalMilliseconds, BlockPrefix(model),
        };
        args.AddRange(held.Select(b => (RedisValue)Hex(b)));
        await redis.ScriptEvaluateAsync(Correct, [HeldKey(model, worker)], [.. args]).WaitAsync(cancellationToken);
    }

    // A missing session reads as Lua false, which reaches the client as a null (RESP2) or a boolean (RESP3).
    private static string? OptionalString(RedisResult item) =>
        item.IsNull || item.Resp3Type is ResultType.Null or ResultType.Boolean ? null : (string?)item;

    // The model's key prefix is a keyed hash: computed once per model, not on every lookup (bounded: models are client text).
    private string BlockPrefix(string model) =>
        _blockPrefixes.TryGetValue(model, out var prefix) ? prefix
        : _blockPrefixes.Count < MaxCachedModels ? _blockPrefixes.GetOrAdd(model, NewBlockPrefix)
        : NewBlockPrefix(model);

    private string NewBlockPrefix(string model) => "gpufleet:aff:" + hasher.Tag("model", model) + ":";

    /// <summary>The prefix and the block's 16 hex digits, as one string (a lookup names a key per block).</summary>
    private static string BlockKey(string prefix, ulong block) => string.Create(prefix.Length + 16, (prefix, block), static (span, key) =>
    {
        key.prefix.CopyTo(span);
        key.block.TryFormat(span[key.prefix.Length..], out _, "x16", CultureInfo.InvariantCulture);
    });

    private string HeldKey(string model, string worker) => "gpufleet:held:" + hasher.Tag("model", model) + ":" + worker;

    private static string SessionKey(string sessionKey) => "gpufleet:sess:" + sessionKey;

    private static string Hex(ulong block) => block.ToString("x16", CultureInfo.InvariantCulture);

    private long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();
}
