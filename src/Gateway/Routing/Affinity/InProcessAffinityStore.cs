namespace GpuFleet.Gateway.Routing.Affinity;

/// <summary>
/// The embedded affinity index (no Redis, or while Redis is down): the same semantics as <see cref="RedisAffinityStore"/>
/// in this process, bounded in entries (the least recently confirmed blocks go first) and expiring after the TTL.
/// </summary>
internal sealed class InProcessAffinityStore(RoutingOptions options, TimeProvider time) : IAffinityStore
{
    private readonly Dictionary<(string Model, ulong Block), Dictionary<string, long>> _blocks = [];
    private readonly Dictionary<(string Model, string Worker), HashSet<ulong>> _byWorker = [];
    private readonly Dictionary<string, (string Worker, long At)> _sessions = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public int BlockCount
    {
        get
        {
            lock (_gate)
            {
                return _blocks.Count;
            }
        }
    }

    public Task<AffinityLookup> LookupAsync(string model, IReadOnlyList<ulong> blocks, IReadOnlyList<string> workers, string? sessionKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        ArgumentNullException.ThrowIfNull(workers);
        var now = Now();
        var held = new Dictionary<string, int>(StringComparer.Ordinal);
        lock (_gate)
        {
            foreach (var worker in workers)
            {
                // Holdings are prefix-closed (a chain is recorded or reported whole), so the depth is found by bisection.
                int lo = 0, hi = blocks.Count;
                while (lo < hi)
                {
                    var mid = (lo + hi + 1) / 2;
                    if (Holds(model, blocks[mid - 1], worker, now))
                    {
                        lo = mid;
                    }
                    else
                    {
                        hi = mid - 1;
                    }
                }

                held[worker] = lo;
            }

            string? session = null;
            if (sessionKey is not null && _sessions.TryGetValue(sessionKey, out var entry) && now - entry.At < (long)options.SessionTtl.TotalMilliseconds)
            {
                session = entry.Worker;
            }

            return Task.FromResult(new AffinityLookup(held, session));
        }
    }

    public Task RecordAsync(string model, IReadOnlyList<ulong> blocks, string worker, string? sessionKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        var now = Now();
        lock (_gate)
        {
            foreach (var block in blocks)
            {
                Add(model, block, worker, now);
            }

            if (sessionKey is not null)
            {
                _sessions[sessionKey] = (worker, now);
            }

            Trim(now);
        }

        return Task.CompletedTask;
    }

    public Task ApplyHoldingsAsync(string model, string worker, IReadOnlyList<ulong> held, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(held);
        var now = Now();
        var grace = (long)options.HoldingsGrace.TotalMilliseconds;
        var keep = held.ToHashSet();
        lock (_gate)
        {
            if (_byWorker.TryGetValue((model, worker), out var current))
            {
                foreach (var block in current.Where(b => !keep.Contains(b)).ToList())
                {
                    if (_blocks.TryGetValue((model, block), out var holders) && holders.TryGetValue(worker, out var at) && now - at >= grace)
                    {
                        Remove(model, block, worker);
                    }
                }
            }

            foreach (var block in keep)
            {
                Add(model, block, worker, now);
            }

            Trim(now);
        }

        return Task.CompletedTask;
    }

    private bool Holds(string model, ulong block, string worker, long now) =>
        _blocks.TryGetValue((model, block), out var holders) && holders.TryGetValue(worker, out var at) && now - at < (long)options.AffinityTtl.TotalMilliseconds;

    private void Add(string model, ulong block, string worker, long now)
    {
        if (!_blocks.TryGetValue((model, block), out var holders))
        {
            _blocks[(model, block)] = holders = new Dictionary<string, long>(StringComparer.Ordinal);
        }

        holders[worker] = now;
        if (!_byWorker.TryGetValue((model, worker), out var set))
        {
            _byWorker[(model, worker)] = set = [];
        }

        set.Add(block);
    }

    private void Remove(string model, ulong block, string worker)
    {
        if (_blocks.TryGetValue((model, block), out var holders) && holders.Remove(worker) && holders.Count == 0)
        {
            _blocks.Remove((model, block));
        }

        if (_byWorker.TryGetValue((model, worker), out var set))
        {
            set.Remove(block);
        }
    }

    /// <summary>Keeps the index within its bound: expired entries first, then the least recently confirmed.</summary>
    private void Trim(long now)
    {
        if (_sessions.Count > options.MaxInProcessBlocks / 4)
        {
            var sessionTtl = (long)options.SessionTtl.TotalMilliseconds;
            foreach (var old in _sessions.OrderBy(e => e.Value.At).Take(_sessions.Count / 4).Select(e => e.Key).ToList())
            {
                _sessions.Remove(old);
            }

            foreach (var stale in _sessions.Where(e => now - e.Value.At >= sessionTtl).Select(e => e.Key).ToList())
            {
                _sessions.Remove(stale);
            }
        }

        if (_blocks.Count <= options.MaxInProcessBlocks)
        {
            return;
        }

        var ttl = (long)options.AffinityTtl.TotalMilliseconds;
        var entries = _blocks.SelectMany(b => b.Value.Select(h => (b.Key.Model, b.Key.Block, Worker: h.Key, At: h.Value))).OrderBy(e => e.At).ToList();
        var target = options.MaxInProcessBlocks * 3 / 4;
        foreach (var e in entries)
        {
            if (_blocks.Count <= target && now - e.At < ttl)
            {
                break;
            }

            Remove(e.Model, e.Block, e.Worker);
        }

    }

    private long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();
}
