using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Engine;

/// <summary>
/// One llama.cpp sequence id. <see cref="Cached"/> is exactly the token list whose state the context
/// holds for this sequence, also after its request finished, so the next request can reuse it.
/// </summary>
internal sealed class SequenceSlot(int sequence)
{
    public int Sequence { get; } = sequence;

    public List<int> Cached { get; } = [];

    public ActiveGeneration? Active { get; set; }

    /// <summary>The gateway prefix blocks whose tokens this slot holds (see <see cref="GenerationRequest.PrefixBlocks"/>).</summary>
    public IReadOnlyList<PrefixBlock> Blocks { get; set; } = [];

    /// <summary>Logical clock of the last use, to pick the least valuable slot to overwrite.</summary>
    public long LastUsed { get; set; }
}

/// <summary>A request waiting for a slot.</summary>
internal sealed class PendingRequest
{
    public required GenerationRequest Request { get; init; }

    public required int[] Prompt { get; init; }

    public required CancellationToken Cancellation { get; init; }

    public required System.Threading.Channels.Channel<GenerationEvent> Output { get; init; }

    public required TaskCompletionSource<CompletionEvent> Completion { get; init; }

    public required long EnqueuedAt { get; init; }

    /// <summary>Made on the submitting thread, so a bad grammar is refused at once; used by the scheduler only.</summary>
    public required LlamaSampler Sampler { get; init; }

    public CancellationTokenRegistration WakeOnCancel { get; set; }
}

/// <summary>A request that holds a slot: prefilling its prompt, then decoding one token per step.</summary>
internal sealed class ActiveGeneration(PendingRequest pending, SequenceSlot slot, int reused, long admittedAt)
{
    public PendingRequest Pending { get; } = pending;

    public SequenceSlot Slot { get; } = slot;

    public int[] Prompt => Pending.Prompt;

    /// <summary>Prompt tokens whose state came from a cache instead of being computed.</summary>
    public int Reused { get; } = reused;

    /// <summary>Next prompt index to prefill.</summary>
    public int PrefillPosition { get; set; } = reused;

    /// <summary>True once the whole prompt is in the context and tokens are being generated.</summary>
    public bool Decoding { get; set; }

    /// <summary>The last sampled token, decoded in the next step.</summary>
    public int NextToken { get; set; }

    public int Generated { get; set; }

    public LlamaSampler Sampler => Pending.Sampler;

    public TextAssembler Text { get; } = new(pending.Request.StopSequences);

    public long AdmittedAt { get; } = admittedAt;

    public long FirstTokenAt { get; set; }

    // Per-step bookkeeping, reset when the batch is built.
    public int TokensInBatch { get; set; }

    public int LogitsIndex { get; set; } = -1;

    public bool SnapshotAfterStep { get; set; }

    /// <summary>The snapshot after this step is of the request's shared prefix.</summary>
    public bool SnapshotShared { get; set; }
}
