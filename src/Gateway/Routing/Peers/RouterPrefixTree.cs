namespace GpuFleet.Gateway.Routing.Peers;

/// <summary>
/// The router-side approximate prefix index of the SGLang and AIBrix baselines: per worker, the prefix blocks this
/// router sent it, learnt only from its own routing (never corrected by what the workers evict), bounded per worker with
/// least-recently-inserted eviction. A prompt's match on a worker is the run of its leading blocks found there, which
/// approximates a radix-tree match on the prompt text at block granularity. Thread-safe.
/// </summary>
internal sealed class RouterPrefixTree(int maxBlocksPerWorker = 1 << 20)
{
    private readonly Dictionary<string, Tree> _trees = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Leading blocks of <paramref name="blocks"/> the worker was sent.</summary>
    public int Match(string worker, IReadOnlyList<ulong> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        lock (_gate)
        {
            if (!_trees.TryGetValue(worker, out var tree))
            {
                return 0;
            }

            var n = 0;
            while (n < blocks.Count && tree.Blocks.ContainsKey(blocks[n]))
            {
                n++;
            }

            return n;
        }
    }

    /// <summary>Blocks held for the worker (SGLang's tree size).</summary>
    public int Size(string worker)
    {
        lock (_gate)
        {
            return _trees.TryGetValue(worker, out var tree) ? tree.Blocks.Count : 0;
        }
    }

    /// <summary>The worker was sent these blocks.</summary>
    public void Insert(string worker, IReadOnlyList<ulong> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        lock (_gate)
        {
            if (!_trees.TryGetValue(worker, out var tree))
            {
                _trees[worker] = tree = new Tree();
            }

            foreach (var block in blocks)
            {
                if (tree.Blocks.Remove(block, out var node))
                {
                    tree.Order.Remove(node);
                }

                tree.Blocks[block] = tree.Order.AddLast(block);
            }

            while (tree.Blocks.Count > maxBlocksPerWorker && tree.Order.First is { } oldest)
            {
                tree.Order.RemoveFirst();
                tree.Blocks.Remove(oldest.Value);
            }
        }
    }

    private sealed class Tree
    {
        public Dictionary<ulong, LinkedListNode<ulong>> Blocks { get; } = [];

        public LinkedList<ulong> Order { get; } = new();
    }
}
