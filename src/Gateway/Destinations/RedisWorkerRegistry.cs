using GpuFleet.Contracts;
using GpuFleet.Gateway.State;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace GpuFleet.Gateway.Destinations;

/// <summary>
/// Workers from the Redis registry (layout in <see cref="WorkerRegistryLayout"/>): every 2 s one script prunes entries
/// whose heartbeat is older than the TTL and returns the live ones; draining workers are left out. While Redis is
/// down (or the read fails) the last known set stays: an outage must not empty the pool, and the status streams
/// still show which of those workers are alive. After a reconnect, reads only add workers for one TTL while the
/// workers announce themselves again. Each change of state is logged once; reconnecting reads at once.
/// </summary>
internal sealed class RedisWorkerRegistry(GatewayRedis redis, WorkerDirectory directory, TimeProvider time, ILogger<RedisWorkerRegistry> logger)
    : BackgroundService
{
    // Redis server time (TIME), not the gateway's clock, decides freshness: workers score entries with it too.
    // Lua numbers are doubles: unix ms (13 digits) are exact and print without an exponent (%.14g).
    private const string ReadScript = """
        local t = redis.call('TIME')
        local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
        local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)
        for _, member in ipairs(stale) do
          redis.call('ZREM', KEYS[1], member)
          redis.call('DEL', ARGV[2] .. member)
        end
        local out = {}
        for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], cutoff, '+inf')) do
          local e = redis.call('HMGET', ARGV[2] .. member, 'name', 'model', 'draining')
          out[#out + 1] = member
          out[#out + 1] = e[1] or ''
          out[#out + 1] = e[2] or ''
          out[#out + 1] = e[3] or '0'
        end
        return out
        """;

    // While the first read has not succeeded, retry quickly so a starting gateway finds its workers at once.
    private static readonly TimeSpan FirstReadRetry = TimeSpan.FromMilliseconds(200);

    // Completed on every connect, so the registry is read at once after an outage; counted to notice reconnects.
    private TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _connects;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!redis.Configured)
        {
            return;
        }

        redis.Connected += OnConnected;
        try
        {
            Dictionary<string, RegistryEntry> known = new(StringComparer.Ordinal);
            var failing = false;
            int? connectsAtLastRead = null;
            long? refillStarted = null;
            while (!stoppingToken.IsCancellationRequested)
            {
                var wake = Volatile.Read(ref _connected);
                if (redis.Database is not { } database)
                {
                    // The first connect is still under way (with Redis down it takes the connect timeout).
                    await Task.WhenAny(wake.Task, Task.Delay(FirstReadRetry, time, stoppingToken));
                    continue;
                }

                try
                {
                    var entries = await ReadAsync(database, stoppingToken);
                    if (failing)
                    {
                        failing = false;
                        DestinationsLog.RegistryRecovered(logger, redis.Endpoints, entries.Count);
                    }

                    // Read after a reconnect: Redis may have restarted empty (or failed over to a stale replica), and
                    // workers re-announce only at their next beat, after their own reconnect backoff. For one TTL the
                    // read may add workers but not remove them, so a Redis restart is not a moment with no workers.
                    var connects = Volatile.Read(ref _connects);
                    if (connectsAtLastRead is { } previous && connects != previous && known.Count > 0)
                    {
                        refillStarted = time.GetTimestamp();
                        DestinationsLog.RegistryRefilling(logger, redis.Endpoints, known.Count, WorkerRegistryLayout.EntryTtl.TotalSeconds);
                    }

                    connectsAtLastRead = connects;
                    if (refillStarted is { } since && time.GetElapsedTime(since) < WorkerRegistryLayout.EntryTtl)
                    {
                        foreach (var (url, entry) in known)
                        {
                            entries.TryAdd(url, entry);
                        }
                    }
                    else
                    {
                        refillStarted = null;
                    }

                    LogChanges(known, entries);
                    known = entries;
                    directory.Update(WorkerSource.Registry, known.Keys);
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException)
                {
                    if (!failing)
                    {
                        failing = true;
                        DestinationsLog.RegistryUnavailable(logger, redis.Endpoints, ex.Message, known.Count);
                    }
                }

                // A connect during the read above returns at once; one used up is replaced for the next.
                await Task.WhenAny(wake.Task, Task.Delay(connectsAtLastRead is null ? FirstReadRetry : WorkerRegistryLayout.Interval, time, stoppingToken));
                if (wake.Task.IsCompleted)
                {
                    Interlocked.CompareExchange(ref _connected, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), wake);
                }
            }
        }
        finally
        {
            redis.Connected -= OnConnected;
        }
    }

    private void OnConnected(object? sender, EventArgs e)
    {
        Interlocked.Increment(ref _connects);
        Volatile.Read(ref _connected).TrySetResult();
    }

    private static async Task<Dictionary<string, RegistryEntry>> ReadAsync(IDatabaseAsync database, CancellationToken cancellationToken)
    {
        var reply = await database.ScriptEvaluateAsync(
            ReadScript,
            [WorkerRegistryLayout.WorkersKey],
            [(long)WorkerRegistryLayout.EntryTtl.TotalMilliseconds, WorkerRegistryLayout.EntryKeyPrefix]).WaitAsync(cancellationToken);
        var items = reply.IsNull ? [] : ((RedisResult[])reply!).Select(item => (string?)item).ToArray();
        var entries = new Dictionary<string, RegistryEntry>(StringComparer.Ordinal);
        for (var i = 0; i + 3 < items.Length; i += 4)
        {
            var url = items[i] ?? "";
            // A draining worker removes its own entry; one that could not (Redis was down) is still draining.
            if (items[i + 3] == "1" || !Uri.TryCreate(url, UriKind.Absolute, out _))
            {
                continue;
            }

            entries[url] = new RegistryEntry(items[i + 1] ?? "", items[i + 2] ?? "");
        }

        return entries;
    }

    private void LogChanges(Dictionary<string, RegistryEntry> before, Dictionary<string, RegistryEntry> after)
    {
        foreach (var (url, entry) in after)
        {
            if (!before.ContainsKey(url))
            {
                DestinationsLog.RegistryWorkerJoined(logger, url, entry.Name, entry.Model);
            }
        }

        foreach (var (url, entry) in before)
        {
            if (!after.ContainsKey(url))
            {
                DestinationsLog.RegistryWorkerLeft(logger, url, entry.Name);
            }
        }
    }

    private readonly record struct RegistryEntry(string Name, string Model);
}
