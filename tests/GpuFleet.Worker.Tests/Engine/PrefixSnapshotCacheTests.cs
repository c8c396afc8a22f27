using GpuFleet.Worker.Engine;

namespace GpuFleet.Worker.Tests.Engine;

public sealed class PrefixSnapshotCacheTests
{
    [Fact]
    public void Finds_the_longest_cached_prefix_within_the_limit()
    {
        var cache = new PrefixSnapshotCache(1000);
        cache.Add([1, 2], new byte[10], kind: SnapshotKind.Shared);
        cache.Add([1, 2, 3, 4], new byte[20]);
        cache.Add([9, 9, 9], new byte[30]);

        Assert.Equal([1, 2, 3, 4], cache.FindLongestPrefix([1, 2, 3, 4, 5], 4)!.Value.Tokens);
        Assert.Equal([1, 2], cache.FindLongestPrefix([1, 2, 3, 4, 5], 3)!.Value.Tokens);
        Assert.Equal([1, 2], cache.FindLongestPrefix([1, 2, 7], 10)!.Value.Tokens);
        Assert.Null(cache.FindLongestPrefix([5, 6, 7], 10));
        Assert.Equal(60, cache.Bytes);
        Assert.Equal(3, cache.Count);
    }

    [Fact]
    public void A_prompt_snapshot_replaces_the_unshared_ones_it_extends_and_a_turn_end_replaces_none()
    {
        var cache = new PrefixSnapshotCache(1000);
        cache.Add([1, 2], new byte[10], kind: SnapshotKind.Shared);
        cache.Add([1, 2, 3], new byte[10]);
        cache.Add([1, 2, 3, 4, 5], new byte[10], kind: SnapshotKind.TurnEnd);
        Assert.Equal(3, cache.Count);

        cache.Add([1, 2, 3, 4, 5, 6, 7], new byte[10]);

        Assert.True(cache.Contains([1, 2]));
        Assert.False(cache.Contains([1, 2, 3]));
        Assert.False(cache.Contains([1, 2, 3, 4, 5]));
        Assert.Equal(2, cache.Superseded);
        Assert.Equal(0, cache.Evictions);
        Assert.Equal(20, cache.Bytes);
    }

    [Fact]
    public void Evicts_least_recently_used_entries_to_stay_within_the_budget()
    {
        var cache = new PrefixSnapshotCache(100);
        cache.Add([1], new byte[40]);
        cache.Add([2], new byte[40]);
        Assert.NotNull(cache.FindLongestPrefix([1, 0], 5)); // touch [1]: [2] is now the oldest

        cache.Add([3], new byte[40]);

        Assert.Equal(80, cache.Bytes);
        Assert.Equal(1, cache.Evictions);
        Assert.True(cache.Contains([1]));
        Assert.False(cache.Contains([2]));
        Assert.True(cache.Contains([3]));
    }

    [Fact]
    public void A_prefix_that_another_snapshot_extends_is_evicted_only_after_it()
    {
        // The shared prefix is the oldest entry (its conversation restored only the longer snapshot since), yet it is what
        // the conversation falls back to and what others restore: the conversation's own snapshot goes first.
        var cache = new PrefixSnapshotCache(100);
        cache.Add([1, 2], new byte[30], kind: SnapshotKind.Shared);
        cache.Add([1, 2, 3], new byte[30]);
        cache.Add([9], new byte[30]);

        cache.Add([7], new byte[30]);

        Assert.Equal(1, cache.Evictions);
        Assert.Equal([1, 2], cache.FindLongestPrefix([1, 2, 3, 4], 10)!.Value.Tokens);

        // Nothing extends it any more: plain LRU among the leaves, and [9] is now the oldest.
        cache.Add([8], new byte[30]);

        Assert.Equal(2, cache.Evictions);
        Assert.False(cache.Contains([9]));
        Assert.True(cache.Contains([1, 2]));
        Assert.True(cache.Contains([7]));
        Assert.True(cache.Contains([8]));
    }

    [Fact]
    public void Ignores_duplicates_and_snapshots_larger_than_the_budget_and_does_nothing_when_disabled()
    {
        var cache = new PrefixSnapshotCache(50);
        cache.Add([1], new byte[10]);
        cache.Add([1], new byte[10]);
        cache.Add([2], new byte[51]);
        var disabled = new PrefixSnapshotCache(0);
        disabled.Add([1], new byte[1]);

        Assert.Equal(1, cache.Count);
        Assert.Equal(10, cache.Bytes);
        Assert.False(disabled.Enabled);
        Assert.Equal(0, disabled.Count);
    }
}
