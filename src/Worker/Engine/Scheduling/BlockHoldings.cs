namespace GpuFleet.Worker.Engine.Scheduling;

/// <summary>
/// Which gateway prefix blocks (<see cref="GenerationRequest.PrefixBlocks"/>) this worker holds, in its slots and its
/// host snapshots, for the gateway's affinity index. The list is rebuilt only after a change, and its version moves with
/// it, so a status read between changes costs nothing and the gateway re-reads only a changed list. Scheduler thread only.
/// </summary>
internal sealed class BlockHoldings(PrefixSnapshotCache snapshots)
{
    private IReadOnlyList<ulong> _held = [];
    private long _version;
    private bool _changed;
    private HashSet<ulong>? _snapshotBlocks;

    /// <summary>The blocks that lie entirely within the first <paramref name="tokens"/> tokens.</summary>
    public static IReadOnlyList<PrefixBlock> Within(IReadOnlyList<PrefixBlock> blocks, int tokens) =>
        blocks.Count == 0 ? [] : [.. blocks.TakeWhile(b => b.TokenEnd <= tokens)];

    /// <summary>The slot now holds <paramref name="blocks"/> instead of what it held.</summary>
    public void Set(SequenceSlot slot, IReadOnlyList<PrefixBlock> blocks)
    {
        if (slot.Blocks.Count > 0 || blocks.Count > 0)
        {
            slot.Blocks = blocks;
            _changed = true;
        }
    }

    /// <summary>A snapshot was added (and others possibly evicted).</summary>
    public void SnapshotsChanged()
    {
        _changed = true;
        _snapshotBlocks = null;
    }

    /// <summary>The distinct blocks held in <paramref name="slots"/> and the host snapshots, and the list's version.</summary>
    public (IReadOnlyList<ulong> Blocks, long Version) Current(IReadOnlyList<SequenceSlot> slots)
    {
        if (_changed)
        {
            _changed = false;
            var held = new HashSet<ulong>();
            foreach (var blocks in slots.Select(s => s.Blocks).Concat(snapshots.Blocks))
            {
                foreach (var block in blocks)
                {
                    held.Add(block.Hash);
                }
            }

            _held = [.. held];
            _version++;
        }

        return (_held, _version);
    }

    /// <summary>
    /// The held blocks that nothing here holds computed yet: a slot claims its prompt's blocks when its request is admitted,
    /// and its prefill computes them in order. A prompt sent here to reuse them waits for that prefill (see
    /// Scheduler.AwaitsSharedPrefill), which the gateway's estimate must count; empty when no prefill is running.
    /// </summary>
    public IReadOnlyList<ulong> Prefilling(IReadOnlyList<SequenceSlot> slots)
    {
        HashSet<ulong>? pending = null;
        foreach (var slot in slots)
        {
            if (slot.Active is { Decoding: false } active)
            {
                foreach (var block in slot.Blocks)
                {
                    if (block.TokenEnd > active.PrefillPosition)
                    {
                        (pending ??= []).Add(block.Hash);
                    }
                }
            }
        }

        if (pending is null)
        {
            return [];
        }

        foreach (var slot in slots)
        {
            var computed = slot.Active is { Decoding: false } active ? active.PrefillPosition : int.MaxValue;
            foreach (var block in slot.Blocks)
            {
                if (block.TokenEnd <= computed)
                {
                    pending.Remove(block.Hash);
                }
            }
        }

        _snapshotBlocks ??= [.. snapshots.Blocks.SelectMany(blocks => blocks).Select(block => block.Hash)];
        pending.ExceptWith(_snapshotBlocks);
        return [.. pending];
    }
}
