using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>
/// A reusable token batch (llama_batch_init / llama_batch_free) with one sequence id per token.
/// Not thread-safe: it belongs to the thread that owns the context.
/// </summary>
internal sealed unsafe class LlamaBatch : IDisposable
{
    private readonly SafeLlamaBatchHandle _handle;
    private readonly LlamaBatchNative _arrays;
    private int _count;

    public LlamaBatch(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _handle = new SafeLlamaBatchHandle(LlamaNative.BatchInit(capacity, 0, 1));
        if (_handle.IsInvalid)
        {
            throw new LlamaNativeException($"llama_batch_init({capacity}) failed.");
        }

        _arrays = _handle.Batch;
        Capacity = capacity;
    }

    public int Capacity { get; }

    public int Count => _count;

    /// <summary>The batch as passed by value to llama_decode.</summary>
    internal LlamaBatchNative Native
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            var batch = _arrays;
            batch.NTokens = _count;
            return batch;
        }
    }

    /// <summary>Appends one token; returns its index in the batch (the index to read its logits with).</summary>
    public int Add(int token, int position, int sequence, bool wantLogits)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        var i = _count;
        if (i >= Capacity)
        {
            throw new InvalidOperationException($"The batch is full ({Capacity} tokens).");
        }

        _arrays.Token[i] = token;
        _arrays.Pos[i] = position;
        _arrays.NSeqId[i] = 1;
        _arrays.SeqId[i][0] = sequence;
        _arrays.Logits[i] = wantLogits ? (sbyte)1 : (sbyte)0;
        _count = i + 1;
        return i;
    }

    public void Clear() => _count = 0;

    public void Dispose() => _handle.Dispose();
}
