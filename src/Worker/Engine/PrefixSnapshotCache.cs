using GpuFleet.Worker.Engine.Compute;

namespace GpuFleet.Worker.Engine;

/// <summary>Where in a request a snapshot was taken, which decides what it may replace.</summary>
internal enum SnapshotKind
{
    /// <summary>Inside a prompt (before its last token, or at an interval): the prefix the conversation's next turn extends.</summary>
    Prompt,
    /// <summary>At the end of the shared prefix (system prompt and tools): restored by other conversations, never replaced.</summary>
    Shared,
    /// <summary>At the end of a turn (prompt and reply).</summary>
    TurnEnd,
}

/// <summary>
/// Host-RAM cache of sequence-state snapshots (llama_state_seq_get_data) keyed by the exact token prefix
/// they hold, bounded in bytes with least-recently-used eviction of leaves (snapshots no other one extends). Used where
/// a slot's tail cannot be trimmed (hybrid qwen35): a request restores the longest snapshot that is a prefix of its prompt.
/// The budget goes to prefixes that are shared or still current: a conversation's older snapshot is dropped
/// when a newer one extends it, while shared ones (a system prompt and its tools) stay while any snapshot extends them.
/// Owned by the scheduler thread; the counters are read by other threads.
/// </summary>
internal sealed class PrefixSnapshotCache
{
    private readonly long _capacityBytes;
    private readonly LinkedList<Entry> _lru = new(); // most recent first
    private long _bytes;
    private int _count;
    private long _evictions;
    private long _superseded;

    public PrefixSnapshotCache(long capacityBytes) => _capacityBytes = capacityBytes;

    public long CapacityBytes => _capacityBytes;

    public long Bytes => Volatile.Read(ref _bytes);

    public int Count => Volatile.Read(ref _count);

    public bool Enabled => _capacityBytes > 0;

    /// <summary>Snapshots dropped to stay within the byte budget.</summary>
    public long Evictions => Volatile.Read(ref _evictions);

    /// <summary>Snapshots dropped because a newer snapshot of the same conversation extends them.</summary>
    public long Superseded => Volatile.Read(ref _superseded);

    /// <summary>True when a snapshot of exactly this prefix is cached (and marks it used).</summary>
    public bool Contains(ReadOnlySpan<int> prefix)
    {
        var hash = Hash(prefix);
        for (var node = _lru.First; node is not null; node = node.Next)
        {
            if (node.Value.Hash == hash && node.Value.Tokens.AsSpan().SequenceEqual(prefix))
            {
                Touch(node);
                return true;
            }
        }

        return false;
    }

    /// <summary>The gateway prefix blocks each cached snapshot holds.</summary>
    public IEnumerable<IReadOnlyList<PrefixBlock>> Blocks => _lru.Select(e => e.Blocks);

    /// <summary>
    /// Adds a snapshot. A <see cref="SnapshotKind.Prompt"/> snapshot replaces the unshared snapshots it extends (the
    /// conversation has moved on); a turn-end one replaces nothing, since with thinking on the next prompt re-renders
    /// the reply and extends the prompt snapshot instead. Evicts the least recently used leaves to stay within the byte budget.
    /// </summary>
    public void Add(int[] tokens, byte[] state, IReadOnlyList<PrefixBlock>? blocks = null, SnapshotKind kind = SnapshotKind.Prompt) =>
        Add(tokens, SequenceState.Of(state), blocks, kind);

    /// <summary>Adds a snapshot budgeted at <see cref="SequenceState.Bytes"/> (see the other overload).</summary>
    public void Add(int[] tokens, SequenceState state, IReadOnlyList<PrefixBlock>? blocks = null, SnapshotKind kind = SnapshotKind.Prompt)
    {
        if (!Enabled || state.Bytes > _capacityBytes || tokens.Length == 0 || Contains(tokens))
        {
            return;
        }

        if (kind == SnapshotKind.Prompt)
        {
            for (var node = _lru.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Kind != SnapshotKind.Shared && node.Value.Tokens.Length < tokens.Length && tokens.AsSpan().StartsWith(node.Value.Tokens))
                {
                    Remove(node);
                    Volatile.Write(ref _superseded, _superseded + 1);
                }

                node = next;
            }
        }

        while (_bytes + state.Bytes > _capacityBytes && OldestLeaf() is { } oldest)
        {
            Remove(oldest);
            Volatile.Write(ref _evictions, _evictions + 1);
        }

        _lru.AddFirst(new Entry(tokens, state, Hash(tokens), blocks ?? [], kind));
        Volatile.Write(ref _bytes, _bytes + state.Bytes);
        Volatile.Write(ref _count, _count + 1);
    }

    /// <summary>The longest cached prefix of <paramref name="prompt"/> no longer than <paramref name="maxLength"/>.</summary>
    public (int[] Tokens, SequenceState State)? FindLongestPrefix(ReadOnlySpan<int> prompt, int maxLength)
    {
        if (Longest(prompt, maxLength) is not { } best)
        {
            return null;
        }

        Touch(best);
        return (best.Value.Tokens, best.Value.State);
    }

    /// <summary>The length of <see cref="FindLongestPrefix"/>'s answer (0: none), without using the entry.</summary>
    public int LongestPrefixLength(ReadOnlySpan<int> prompt, int maxLength) => Longest(prompt, maxLength)?.Value.Tokens.Length ?? 0;

    private LinkedListNode<Entry>? Longest(ReadOnlySpan<int> prompt, int maxLength)
    {
        LinkedListNode<Entry>? best = null;
        for (var node = _lru.First; node is not null; node = node.Next)
        {
            var tokens = node.Value.Tokens;
            if (tokens.Length <= maxLength && tokens.Length <= prompt.Length
                && (best is null || tokens.Length > best.Value.Tokens.Length)
                && prompt[..tokens.Length].SequenceEqual(tokens))
            {
                best = node;
            }
        }

        return best;
    }

    /// <summary>
    /// The least recently used snapshot that no other cached snapshot extends. A prefix that others extend (a system
    /// prompt and its tools under the conversations that restored it) is what those conversations fall back to and what
    /// a new conversation or a moved turn restores, but LRU alone would drop it first, since each restore touches only the
    /// longest match. So leaves go first, as in a radix-tree prefix cache; the longest snapshot is always a leaf.
    /// </summary>
    private LinkedListNode<Entry>? OldestLeaf()
    {
        for (var node = _lru.Last; node is not null; node = node.Previous)
        {
            var tokens = node.Value.Tokens;
            var extended = false;
            for (var other = _lru.First; other is not null && !extended; other = other.Next)
            {
                extended = other.Value.Tokens.Length > tokens.Length && other.Value.Tokens.AsSpan().StartsWith(tokens);
            }

            if (!extended)
            {
                return node;
            }
        }

        return null;
    }

    private void Touch(LinkedListNode<Entry> node)
    {
        _lru.Remove(node);
        _lru.AddFirst(node);
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        _lru.Remove(node);
        Volatile.Write(ref _bytes, _bytes - node.Value.State.Bytes);
        Volatile.Write(ref _count, _count - 1);
    }

    private static ulong Hash(ReadOnlySpan<int> tokens)
    {
        var hash = 14695981039346656037UL;
        foreach (var t in tokens)
        {
            hash = (hash ^ (uint)t) * 1099511628211UL;
        }

        return hash;
    }

    private sealed record Entry(int[] Tokens, SequenceState State, ulong Hash, IReadOnlyList<PrefixBlock> Blocks, SnapshotKind Kind);
}
