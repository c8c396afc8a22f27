using GpuFleet.Worker.Engine;
using GpuFleet.Worker.Engine.Scheduling;

namespace GpuFleet.Worker.Tests.Engine.Scheduling;

/// <summary>The scheduler's bookkeeping without a context: the maintained KV cell count and the held-blocks list.</summary>
public sealed class SchedulingBookkeepingTests
{
    [Fact]
    public void The_shared_cell_count_is_the_sum_of_the_slots_tokens_through_every_change()
    {
        var cells = new SequenceSlot.CellCount();
        var a = new SequenceSlot(0, cells);
        var b = new SequenceSlot(1, cells);

        a.Append([1, 2, 3, 4, 5]);
        b.Append(7);
        b.Append([8, 9]);
        Assert.Equal(8, cells.Used);

        a.TrimTo(2);
        Assert.Equal([1, 2], a.Cached.ToArray());
        Assert.Equal(5, cells.Used);

        b.Clear();
        a.Append(6);
        Assert.Equal([1, 2, 6], a.Cached.ToArray());
        Assert.Equal(a.CachedCount + b.CachedCount, cells.Used);
        Assert.Equal(3, cells.Used);
    }

    [Fact]
    public void Held_blocks_are_rebuilt_and_versioned_only_after_a_change()
    {
        var snapshots = new PrefixSnapshotCache(1000);
        var holdings = new BlockHoldings(snapshots);
        var slots = new[] { new SequenceSlot(0, new SequenceSlot.CellCount()), new SequenceSlot(1, new SequenceSlot.CellCount()) };
        var (empty, start) = holdings.Current(slots);
        Assert.Empty(empty);

        holdings.Set(slots[0], [new PrefixBlock(10, 64), new PrefixBlock(11, 128)]);
        holdings.Set(slots[1], [new PrefixBlock(10, 64)]);
        var (held, version) = holdings.Current(slots);
        Assert.Equal([10UL, 11UL], held.Order());
        Assert.Equal(start + 1, version);

        holdings.Set(slots[1], []); // slot 0 still holds block 10
        holdings.Set(slots[1], []); // nothing held, nothing changed
        Assert.Equal(version + 1, holdings.Current(slots).Version);
        Assert.Equal(version + 1, holdings.Current(slots).Version);

        snapshots.Add([1, 2, 3], new byte[10], [new PrefixBlock(12, 3)]);
        holdings.SnapshotsChanged();
        Assert.Equal([10UL, 11UL, 12UL], holdings.Current(slots).Blocks.Order());
        Assert.Equal(version + 2, holdings.Current(slots).Version);
    }

    [Fact]
    public void Blocks_within_a_prefix_are_those_that_end_inside_it() =>
        Assert.Equal(
            [new PrefixBlock(1, 64), new PrefixBlock(2, 128)],
            BlockHoldings.Within([new PrefixBlock(1, 64), new PrefixBlock(2, 128), new PrefixBlock(3, 192)], 150));
}
