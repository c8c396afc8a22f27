namespace GpuFleet.Worker.Engine;

/// <summary>Engine settings, bound from configuration section <c>Engine</c>.</summary>
internal sealed class EngineOptions
{
    public const string SectionName = "Engine";

    /// <summary>Sequence slots decoded together (continuous batching width).</summary>
    public int Slots { get; set; } = 4;

    /// <summary>
    /// Tokens in the KV pool that all slots share (llama.cpp's unified KV cache), so one long prompt and several short
    /// ones fit together; one request may use all of it. 0 = auto: the model's training context, capped by
    /// <see cref="KvCacheBytes"/>.
    /// </summary>
    public int ContextSize { get; set; }

    /// <summary>
    /// One KV pool for all slots (default). Off = each slot gets <c>ContextSize / Slots</c> cells of its own, as
    /// llama.cpp without <c>--kv-unified</c>: a request's output then never depends on what else runs (the unified
    /// pool's attention sums over other sequences' masked cells, which can flip a near-tie token), at the cost of the
    /// per-request limit.
    /// </summary>
    public bool UnifiedKv { get; set; } = true;

    /// <summary>Memory the auto-sized KV pool may take; 0 = half of the memory available where it lives (host RAM, or the GPU's when offloaded).</summary>
    public long KvCacheBytes { get; set; }

    /// <summary>Most tokens in one decode step (decode tokens of running requests + prefill chunks).</summary>
    public int BatchSize { get; set; } = 512;

    /// <summary>
    /// Most prompt tokens in a step that also carries running streams' next tokens: the bound on how long a long
    /// prefill delays each of their tokens (one step of this many prompt tokens). Without running streams a prefill
    /// takes the whole <see cref="BatchSize"/>.
    /// </summary>
    public int PrefillChunkTokens { get; set; } = 256;

    /// <summary>
    /// Prefill goes to the admitted prompt with the fewest tokens left first, so a later turn's few hundred new tokens do not
    /// wait behind a cold long prompt; a prompt admitted longer ago than this is overtaken no more, so a stream of short
    /// prompts cannot starve a long one. The default is about the prefill time of a long coding-agent prompt on the target card.
    /// </summary>
    public TimeSpan PrefillOvertakeLimit { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>CPU threads for llama.cpp; 0 = all cores.</summary>
    public int Threads { get; set; }

    /// <summary>Requests waiting for a slot; beyond this, new requests are refused at once as overloaded.</summary>
    public int QueueCapacity { get; set; } = 64;

    /// <summary>
    /// Reuse cached prompt prefixes (slot KV and host snapshots). Greedy output is the same either way; a
    /// seeded sampled output can differ in rare tokens, because reused KV was computed in another batch
    /// shape and llama.cpp's kernels are not bit-identical across batch shapes. Off = reproducible sampling.
    /// </summary>
    public bool PrefixReuse { get; set; } = true;

    /// <summary>
    /// Host-RAM budget for sequence-state snapshots (prefix reuse on hybrid/recurrent models such as qwen35,
    /// whose slots cannot be trimmed). 0 disables snapshots.
    /// </summary>
    public long HostCacheBytes { get; set; } = 1L << 30;

    /// <summary>Also snapshot every this many prompt tokens during prefill (0 = only at prompt and turn ends).</summary>
    public int SnapshotInterval { get; set; }

    /// <summary>Every problem with these settings, each naming its key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Slots is < 1 or > 256)
        {
            errors.Add($"Engine:Slots must be between 1 and 256, not {Slots}.");
        }

        if (ContextSize is not 0 and < 64)
        {
            errors.Add($"Engine:ContextSize must be 0 (sized from the model and memory) or at least 64 tokens, not {ContextSize}.");
        }

        if (KvCacheBytes < 0)
        {
            errors.Add($"Engine:KvCacheBytes must be 0 (half the available memory) or positive, not {KvCacheBytes}.");
        }

        if (BatchSize < 1)
        {
            errors.Add($"Engine:BatchSize must be positive, not {BatchSize}.");
        }
        else if (BatchSize < Slots)
        {
            errors.Add($"Engine:BatchSize ({BatchSize}) must be at least Engine:Slots ({Slots}) so every running request advances each step.");
        }

        if (PrefillChunkTokens < 1)
        {
            errors.Add($"Engine:PrefillChunkTokens must be positive, not {PrefillChunkTokens}.");
        }

        if (PrefillOvertakeLimit < TimeSpan.Zero)
        {
            errors.Add($"Engine:PrefillOvertakeLimit must not be negative (0: admission order), not {PrefillOvertakeLimit}.");
        }

        if (Threads < 0)
        {
            errors.Add($"Engine:Threads must be 0 (all cores) or positive, not {Threads}.");
        }

        if (QueueCapacity < 0)
        {
            errors.Add($"Engine:QueueCapacity must not be negative, not {QueueCapacity}.");
        }

        if (HostCacheBytes < 0)
        {
            errors.Add($"Engine:HostCacheBytes must not be negative, not {HostCacheBytes}.");
        }

        if (SnapshotInterval < 0)
        {
            errors.Add($"Engine:SnapshotInterval must not be negative, not {SnapshotInterval}.");
        }

        return errors;
    }
}
