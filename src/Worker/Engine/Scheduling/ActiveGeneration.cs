using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Engine.Scheduling;

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

    /// <summary>KV cells admission counts for it: its whole prompt, prefilled or not, and what it has generated.</summary>
    public long ReservedCells => (long)Prompt.Length + Generated;

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
