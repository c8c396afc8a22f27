using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>What llama_decode reported, as a value the scheduler acts on.</summary>
internal enum DecodeResult
{
    Ok = 0,
    /// <summary>No KV slot for the batch (1): retry with less work, not a failure of the requests.</summary>
    NoKvSlot = 1,
    /// <summary>Aborted by the abort callback (2).</summary>
    Aborted = 2,
    /// <summary>The batch was invalid (-1).</summary>
    InvalidBatch = -1,
    /// <summary>Any other negative code: a fatal error for this batch.</summary>
    Failed = -2,
}

/// <summary>How to create a context: sequence slots, context size and threads.</summary>
internal sealed record LlamaContextSettings
{
    /// <summary>Number of sequences (request slots) decoded together.</summary>
    public int Sequences { get; init; } = 4;

    /// <summary>KV cells in the context (tokens of all sequences together).</summary>
    public int ContextSize { get; init; } = 4096;

    /// <summary>
    /// One KV pool for all sequences (llama.cpp's unified KV cache): a sequence may use any free cell, up to the whole
    /// context. Off = each sequence gets <c>ContextSize / Sequences</c> cells of its own.
    /// </summary>
    public bool UnifiedKv { get; init; } = true;

    /// <summary>Logical batch size: most tokens in one llama_decode call.</summary>
    public int BatchSize { get; init; } = 512;

    public int Threads { get; init; } = Environment.ProcessorCount;

    public int BatchThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>Recurrent-state snapshots kept per sequence for short rollbacks (qwen35); 0 = none.</summary>
    public int RecurrentRollback { get; init; }
}

/// <summary>
/// A llama.cpp context with its own KV cache / recurrent state. Not thread-safe: exactly one thread
/// (the engine's scheduler) uses it after creation.
/// </summary>
internal sealed unsafe class LlamaContext : IDisposable
{
    private readonly SafeLlamaContextHandle _handle;
    private readonly nint _context;
    private readonly nint _memory;
    private LlamaTokenData[]? _samplingCandidates;

    public LlamaContext(LlamaModel model, LlamaContextSettings settings)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(settings);
        var parameters = LlamaNative.ContextDefaultParams();
        parameters.NCtx = checked((uint)settings.ContextSize);
        parameters.KvUnified = settings.UnifiedKv ? (byte)1 : (byte)0;
        parameters.NBatch = (uint)settings.BatchSize;
        parameters.NUbatch = (uint)settings.BatchSize;
        parameters.NSeqMax = (uint)settings.Sequences;
        parameters.NRsSeq = (uint)settings.RecurrentRollback;
        parameters.NThreads = settings.Threads;
        parameters.NThreadsBatch = settings.BatchThreads;
        parameters.NoPerf = 1;

        _handle = new SafeLlamaContextHandle(LlamaNative.InitFromModel(model.Handle.DangerousGetHandle(), parameters), model.Handle);
        if (_handle.IsInvalid)
        {
            throw new LlamaNativeException(
                $"llama_init_from_model failed for {settings.Sequences} sequences in {settings.ContextSize} tokens of context " +
                "(out of memory, or more sequences than llama.cpp supports; see the log).");
        }

        _context = _handle.DangerousGetHandle();
        AttachThreadPools(settings.Threads, settings.BatchThreads);
        _memory = LlamaNative.GetMemory(_context);
        Model = model;
        ContextSize = (int)LlamaNative.NCtx(_context);
        ContextPerSequence = (int)LlamaNative.NCtxSeq(_context);
        BatchSize = (int)LlamaNative.NBatch(_context);
        Sequences = (int)LlamaNative.NSeqMax(_context);
    }

    public LlamaModel Model { get; }

    public int ContextSize { get; }

    public int ContextPerSequence { get; }

    public int BatchSize { get; }

    public int Sequences { get; }

    public DecodeResult Decode(LlamaBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var rc = LlamaNative.Decode(_context, batch.Native);
        return rc switch
        {
            0 => DecodeResult.Ok,
            1 => DecodeResult.NoKvSlot,
            2 => DecodeResult.Aborted,
            -1 => DecodeResult.InvalidBatch,
            _ => DecodeResult.Failed,
        };
    }

    /// <summary>The logits row of batch index <paramref name="index"/> (valid until the next decode).</summary>
    public ReadOnlySpan<float> GetLogits(int index)
    {
        var p = LlamaNative.GetLogitsIth(_context, index);
        if (p is null)
        {
            throw new InvalidOperationException($"No logits for batch index {index}.");
        }

        return new ReadOnlySpan<float>(p, Model.VocabularySize);
    }

    /// <summary>One sampling candidate per vocabulary token, reused by every sample on the context's thread.</summary>
    internal LlamaTokenData[] SamplingCandidates => _samplingCandidates ??= new LlamaTokenData[Model.VocabularySize];

    /// <summary>Removes positions [<paramref name="from"/>, end) of a sequence; false when the memory cannot (hybrid tails).</summary>
    public bool TryRemoveTail(int sequence, int from) => LlamaNative.MemorySeqRm(_memory, sequence, from, -1);

    /// <summary>Removes every position of a sequence (always possible).</summary>
    public void ClearSequence(int sequence)
    {
        if (!LlamaNative.MemorySeqRm(_memory, sequence, -1, -1))
        {
            throw new LlamaNativeException($"llama_memory_seq_rm refused to clear sequence {sequence}.");
        }
    }

    public void ClearAll() => LlamaNative.MemoryClear(_memory, true);

    public int SequencePositionMax(int sequence) => LlamaNative.MemorySeqPosMax(_memory, sequence);

    public int SequencePositionMin(int sequence) => LlamaNative.MemorySeqPosMin(_memory, sequence);

    /// <summary>Copies the whole state of one sequence into another (both stay usable).</summary>
    public void CopySequence(int source, int destination) => LlamaNative.MemorySeqCp(_memory, source, destination, -1, -1);

    /// <summary>Serialises one sequence's state (KV cells and recurrent state) to host memory.</summary>
    public byte[] GetSequenceState(int sequence)
    {
        var size = (int)LlamaNative.StateSeqGetSize(_context, sequence);
        var data = GC.AllocateUninitializedArray<byte>(size);
        fixed (byte* p = data)
        {
            var written = (int)LlamaNative.StateSeqGetData(_context, p, (nuint)size, sequence);
            if (written != size)
            {
                throw new LlamaNativeException($"llama_state_seq_get_data wrote {written} of {size} bytes for sequence {sequence}.");
            }
        }

        return data;
    }

    /// <summary>Serialized size of one sequence's state in bytes.</summary>
    public long GetSequenceStateSize(int sequence) => (long)LlamaNative.StateSeqGetSize(_context, sequence);

    /// <summary>Restores a state from <see cref="GetSequenceState"/> into a sequence; false if llama.cpp refused it.</summary>
    public bool TrySetSequenceState(int sequence, ReadOnlySpan<byte> state)
    {
        fixed (byte* p = state)
        {
            return LlamaNative.StateSeqSetData(_context, p, (nuint)state.Length, sequence) > 0;
        }
    }

    /// <summary>True when the context computes on its own persistent ggml threads (see <see cref="LlamaThreadPool"/>).</summary>
    public bool HasThreadPool { get; private set; }

    public void Dispose() => _handle.Dispose();

    /// <summary>
    /// Persistent CPU threads for this context, as llama.cpp's own tools set them up: one pool when decodes and batches use
    /// the same thread count, else a batch pool and a decode pool that sleeps until its first graph. The handle owns them.
    /// </summary>
    private void AttachThreadPools(int threads, int batchThreads)
    {
        using var batch = LlamaThreadPool.TryCreate(batchThreads, paused: false);
        if (batch is null)
        {
            return;
        }

        using var separate = threads == batchThreads ? null : LlamaThreadPool.TryCreate(threads, paused: true);
        if (threads != batchThreads && separate is null)
        {
            return;
        }

        _handle.AttachThreadPools(separate ?? batch, batch);
        HasThreadPool = true;
    }
}
