namespace GpuFleet.Worker.Engine;

/// <summary>A point-in-time view of the engine for the APIs, the gateway and metrics.</summary>
internal sealed record EngineStatus
{
    public int QueueDepth { get; init; }

    public int QueueCapacity { get; init; }

    public int RunningSlots { get; init; }

    public int FreeSlots { get; init; }

    public int TotalSlots { get; init; }

    /// <summary>The most tokens (prompt and completion) one request can hold.</summary>
    public int ContextPerRequest { get; init; }

    /// <summary>Tokens held in KV / state across all slots (cached prefixes included).</summary>
    public long KvTokensUsed { get; init; }

    public long KvTokensTotal { get; init; }

    /// <summary>
    /// Cells promised to the running requests (their whole prompts and generated tokens): admission waits while this plus
    /// the next prompt exceeds <see cref="KvTokensTotal"/>.
    /// </summary>
    public long ReservedKvTokens { get; init; }

    /// <summary>KV cache and recurrent-state bytes in use, from the measured per-token and per-sequence state size.</summary>
    public long KvBytesUsed { get; init; }

    public long KvBytesTotal { get; init; }

    public int HostCacheEntries { get; init; }

    public long HostCacheBytes { get; init; }

    public long HostCacheCapacityBytes { get; init; }

    /// <summary>Snapshots dropped to stay within the host-RAM budget, since start.</summary>
    public long HostCacheEvictions { get; init; }

    /// <summary>Prompt tokens per second over the recent window.</summary>
    public double PrefillTokensPerSecond { get; init; }

    /// <summary>Generated tokens per second over the recent window (all streams together).</summary>
    public double DecodeTokensPerSecond { get; init; }

    public long PromptTokensTotal { get; init; }

    /// <summary>Prompt tokens served from cache instead of being prefilled.</summary>
    public long ReusedPromptTokensTotal { get; init; }

    public long GeneratedTokensTotal { get; init; }

    public long RequestsCompleted { get; init; }

    public long RequestsFailed { get; init; }

    /// <summary>Requests whose caller went away before they finished (not in <see cref="RequestsCompleted"/>).</summary>
    public long RequestsCancelled { get; init; }

    public long RequestsRejected { get; init; }

    public bool Stopping { get; init; }

    /// <summary>Prompt tokens admitted but not yet prefilled: waiting requests' prompts and running prefills.</summary>
    public long PendingPrefillTokens { get; init; }

    /// <summary>Distinct gateway prefix blocks held in slots or host snapshots (for the gateway's affinity index).</summary>
    public IReadOnlyList<ulong> HeldPrefixBlocks { get; init; } = [];

    /// <summary>Changes whenever <see cref="HeldPrefixBlocks"/> does.</summary>
    public long HoldingsVersion { get; init; }

    /// <summary>
    /// Those of <see cref="HeldPrefixBlocks"/> that a running prefill claimed and is still computing: a prompt reusing them
    /// waits for it.
    /// </summary>
    public IReadOnlyList<ulong> PrefillingPrefixBlocks { get; init; } = [];
}
