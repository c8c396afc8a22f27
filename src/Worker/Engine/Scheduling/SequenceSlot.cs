using System.Runtime.InteropServices;

namespace GpuFleet.Worker.Engine.Scheduling;

/// <summary>
/// One llama.cpp sequence id. <see cref="Cached"/> is exactly the token list whose state the context
/// holds for this sequence, also after its request finished, so the next request can reuse it.
/// </summary>
internal sealed class SequenceSlot(int sequence, SequenceSlot.CellCount cells)
{
    private readonly List<int> _cached = [];

    public int Sequence { get; } = sequence;

    /// <summary>The tokens whose state the context holds for this sequence (valid until the slot next changes).</summary>
    public ReadOnlySpan<int> Cached => CollectionsMarshal.AsSpan(_cached);

    public int CachedCount => _cached.Count;

    public ActiveGeneration? Active { get; set; }

    /// <summary>The gateway prefix blocks whose tokens this slot holds (see <see cref="GenerationRequest.PrefixBlocks"/>).</summary>
    public IReadOnlyList<PrefixBlock> Blocks { get; set; } = [];

    /// <summary>Logical clock of the last use, to pick the least valuable slot to overwrite.</summary>
    public long LastUsed { get; set; }

    public void Append(int token)
    {
        _cached.Add(token);
        cells.Used++;
    }

    public void Append(ReadOnlySpan<int> tokens)
    {
        _cached.AddRange(tokens);
        cells.Used += tokens.Length;
    }

    /// <summary>Keeps the first <paramref name="count"/> tokens (the context's tail was removed from there).</summary>
    public void TrimTo(int count)
    {
        cells.Used -= _cached.Count - count;
        _cached.RemoveRange(count, _cached.Count - count);
    }

    /// <summary>Forgets every token (the context's sequence was cleared).</summary>
    public void Clear()
    {
        cells.Used -= _cached.Count;
        _cached.Clear();
    }

    /// <summary>
    /// KV cells held by all the slots that share it: every change to a slot's tokens goes through the slot, so the
    /// sum is kept exact instead of being recounted for each batch.
    /// </summary>
    internal sealed class CellCount
    {
        public int Used { get; set; }
    }
}
