using GpuFleet.Worker.Engine.Compute;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine.Scheduling;

/// <summary>
/// The context's sequence slots and the shared KV pool they fill: which free slot a prompt gets (the one that lets it
/// skip the most prefill: a cached prefix, trimmed where the model allows, or a host snapshot restored), snapshots of
/// what a slot holds, eviction of idle slots' prefixes when cells are needed, and the count of cells in use.
/// Scheduler thread only.
/// </summary>
internal sealed class SlotTable
{
    private readonly SequenceSlot[] _slots;
    private readonly SequenceSlot.CellCount _cells = new();
    private readonly IComputeContext _context;
    private readonly PrefixSnapshotCache _snapshots;
    private readonly BlockHoldings _holdings;
    private readonly bool _prefixReuse;
    private readonly ILogger _logger;
    private long _clock;

    public SlotTable(int slots, IComputeContext context, bool prefixReuse, PrefixSnapshotCache snapshots, BlockHoldings holdings, ILogger logger)
    {
        _slots = [.. Enumerable.Range(0, slots).Select(i => new SequenceSlot(i, _cells))];
        _context = context;
        _prefixReuse = prefixReuse;
        _snapshots = snapshots;
        _holdings = holdings;
        _logger = logger;
        State = context.State;
    }

    public IReadOnlyList<SequenceSlot> All => _slots;

    /// <summary>The measured state size per sequence and per token, and whether a sequence's tail can be trimmed.</summary>
    public StateFootprint State { get; }

    /// <summary>Cells in the whole pool (shared by all slots).</summary>
    public int Capacity => _context.ContextSize;

    /// <summary>Cells held by all slots, cached prefixes of idle slots included.</summary>
    public int UsedCells => _cells.Used;

    public bool AnyFree => _slots.Any(s => s.Active is null);

    public int Running => _slots.Count(s => s.Active is not null);

    /// <summary>Slots whose sequence holds any state.</summary>
    public int Holding => _slots.Count(s => s.CachedCount > 0);

    /// <summary>Marks the slot as just used (the least recently used is overwritten first).</summary>
    public void Touch(SequenceSlot slot) => slot.LastUsed = ++_clock;

    /// <summary>
    /// Picks the free slot that lets the prompt skip the most prefill: a slot whose cached tokens share a
    /// prefix with it (trimmed to that prefix where the model allows), or a host snapshot restored into
    /// the least recently used free slot. At least one prompt token is always decoded, for its logits.
    /// </summary>
    public (SequenceSlot Slot, int Reused) Assign(int[] prompt)
    {
        var maxReuse = _prefixReuse ? prompt.Length - 1 : 0;
        SequenceSlot? best = null;
        var bestReuse = 0;
        foreach (var slot in _slots.Where(s => s.Active is null))
        {
            var reuse = Reuse(slot, prompt, maxReuse);
            // Equal reuse: an empty slot first (nothing cached is lost), then the least recently used.
            if (best is null || reuse > bestReuse || (reuse == bestReuse && Emptier(slot, best)))
            {
                best = slot;
                bestReuse = reuse;
            }
        }

        var chosen = best!;
        if (_snapshots.Enabled && _snapshots.FindLongestPrefix(prompt, maxReuse) is { } snapshot && snapshot.Tokens.Length > bestReuse)
        {
            // Overwrite the least recently used free slot; its own state was snapshotted when its turn ended.
            chosen = _slots.Where(s => s.Active is null).OrderBy(s => s.CachedCount > 0).ThenBy(s => s.LastUsed).First();
            _context.ClearSequence(chosen.Sequence);
            chosen.Clear();
            // Idle slots alone always make the room: admission let this prompt in only if it fits beside the running
            // requests' prompts and tokens, and the snapshot is shorter than the prompt.
            EvictIdle(snapshot.Tokens.Length, keep: chosen);
            if (_context.TrySetSequenceState(chosen.Sequence, snapshot.State))
            {
                chosen.Append(snapshot.Tokens);
                return (chosen, snapshot.Tokens.Length);
            }

            EngineLog.SnapshotRestoreFailed(_logger, snapshot.Tokens.Length, chosen.Sequence);
            Reset(chosen);
            return (chosen, 0);
        }

        if (bestReuse == chosen.CachedCount)
        {
            return (chosen, bestReuse);
        }

        if (bestReuse > 0 && _context.TryRemoveTail(chosen.Sequence, bestReuse))
        {
            chosen.TrimTo(bestReuse);
            return (chosen, bestReuse);
        }

        Reset(chosen);
        return (chosen, 0);
    }

    /// <summary>The prompt tokens <see cref="Assign"/> would skip now, without assigning anything.</summary>
    public int Reusable(int[] prompt)
    {
        var maxReuse = _prefixReuse ? prompt.Length - 1 : 0;
        var best = _slots.Where(s => s.Active is null).Select(s => Reuse(s, prompt, maxReuse)).DefaultIfEmpty().Max();
        return _snapshots.Enabled ? Math.Max(best, _snapshots.LongestPrefixLength(prompt, maxReuse)) : best;
    }

    /// <summary>
    /// Frees cells for <paramref name="cells"/> more tokens from the cached prefixes of idle slots, least recently used
    /// first (their state was snapshotted when their turn ended); true when the pool then has room.
    /// </summary>
    public bool EvictIdle(int cells, SequenceSlot? keep = null)
    {
        foreach (var idle in _slots.Where(s => s.Active is null && s != keep && s.CachedCount > 0).OrderBy(s => s.LastUsed).ToList())
        {
            if (UsedCells + cells <= Capacity)
            {
                return true;
            }

            Reset(idle);
        }

        return UsedCells + cells <= Capacity;
    }

    /// <summary>Snapshots the slot's state into the host cache, unless that prefix is there already or cannot fit.</summary>
    public void Snapshot(SequenceSlot slot, SnapshotKind kind)
    {
        if (!_snapshots.Enabled || slot.CachedCount == 0)
        {
            return;
        }

        var tokens = slot.Cached.ToArray();
        // A state larger than the whole budget would be copied (device to host) only to be dropped.
        if (!_snapshots.Contains(tokens) && _context.GetSequenceStateSize(slot.Sequence) <= _snapshots.CapacityBytes)
        {
            _snapshots.Add(tokens, _context.GetSequenceState(slot.Sequence), BlockHoldings.Within(slot.Blocks, tokens.Length), kind);
            _holdings.SnapshotsChanged(); // added, and possibly others evicted
        }
    }

    /// <summary>Clears the slot's sequence: its state, tokens and blocks.</summary>
    public void Reset(SequenceSlot slot)
    {
        _context.ClearSequence(slot.Sequence);
        slot.Clear();
        _holdings.Set(slot, []);
    }

    /// <summary>What a free slot's cached tokens would spare the prompt.</summary>
    private int Reuse(SequenceSlot slot, int[] prompt, int maxReuse)
    {
        var common = slot.Cached.CommonPrefixLength(prompt);
        // Without tail trimming, a slot's state is only usable when all of it is a prefix of the prompt. With it,
        // trimming is worth it only when it keeps at least as much as it throws away: sharing just the chat
        // template's first tokens must not cost another conversation's whole cached prefix.
        var reuse = State.CanTrimTail ? Math.Min(common, maxReuse)
            : common == slot.CachedCount && common <= maxReuse ? common : 0;
        return reuse < slot.CachedCount - reuse ? 0 : reuse;
    }

    private static bool Emptier(SequenceSlot slot, SequenceSlot than) =>
        (slot.CachedCount == 0) != (than.CachedCount == 0) ? slot.CachedCount == 0 : slot.LastUsed < than.LastUsed;
}
