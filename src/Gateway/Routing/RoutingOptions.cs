namespace GpuFleet.Gateway.Routing;

/// <summary>How the gateway picks a worker, bound from <c>Gateway:Routing</c> (see docs/gateway.md, "Routing policy").</summary>
internal sealed class RoutingOptions
{
    public const string SectionName = "Gateway:Routing";

    /// <summary>GpuFleet's own policy (<see cref="TimeToFirstTokenPolicy"/>).</summary>
    public const string DefaultPolicy = "gpufleet";

    /// <summary>
    /// The load-balancing policy (default <c>gpufleet</c>). The others are the anchors' policies, for benchmarks only:
    /// round-robin, least-queue, prefix-only, sglang-cache-aware, aibrix-prefix-cache, llm-d (src/Gateway/Routing/Peers).
    /// </summary>
    public string Policy { get; set; } = DefaultPolicy;

    /// <summary>
    /// Secret key of the prefix-block hashes (base64, at least 16 bytes), the same on every gateway replica that shares
    /// a Redis. Unset: a random key per process (fine for one gateway; replicas would not share affinity).
    /// </summary>
    public string? AffinityKey { get; set; }

    /// <summary>Canonical prompt bytes per prefix block (about 250 tokens at the default).</summary>
    public int BlockBytes { get; set; } = 1024;

    /// <summary>How long a block stays attributed to a worker without being confirmed again.</summary>
    public TimeSpan AffinityTtl { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>A worker's report drops a block only when it was last recorded longer ago than this (the report may predate the request).</summary>
    public TimeSpan HoldingsGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Bound of the in-process index (blocks); the oldest go first.</summary>
    public int MaxInProcessBlocks { get; set; } = 500_000;

    /// <summary>Stick a conversation (x-session-id header, else the OpenAI <c>user</c> field) to the worker that served it.</summary>
    public bool SessionStickiness { get; set; } = true;

    public TimeSpan SessionTtl { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Hot-spot guard: a session's worker, or the worker holding a later turn's history, whose outstanding requests
    /// (running + queued + sent since its last report) reach this many times its slots loses the request to the least
    /// loaded worker while that one is below it.
    /// </summary>
    public double HotSpotLoad { get; set; } = 1.5;

    /// <summary>
    /// A new conversation (no worker holds its previous turns) goes only to a worker whose load (outstanding requests per
    /// slot) is within this of the least loaded worker's; a shared prefix held there wins among those. It commits the
    /// worker to the conversation's later turns, so a worker holding a popular system prompt must not collect them all.
    /// </summary>
    public double NewConversationLoadMargin { get; set; } = 0.5;

    /// <summary>
    /// New conversations (no worker holds any of the prompt): workers whose expected time to first token is within this
    /// of the best one's count as equal, and the one holding the least cached work among them takes it, so the fleet's
    /// caches together hold more conversations. Zero still spreads exact ties.
    /// </summary>
    public TimeSpan SpreadTolerance { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The same tolerance as a share of the best estimate, for long prompts; the larger of the two applies.</summary>
    public double SpreadToleranceRatio { get; set; } = 0.1;

    /// <summary>
    /// A worker is no candidate for a prompt whose estimated tokens exceed this many times its context per request
    /// (<c>context_per_slot</c>). The estimate divides canonical bytes by a per-model average of bytes per token, so
    /// one prompt can be sparser than the average (whitespace-heavy code, or the uncalibrated default of 4 against a
    /// tokenizer at 5 to 6 bytes per token): 1.5 keeps every worker that could serve a prompt up to 50 % sparser
    /// than estimated. When no worker passes, the one with the largest context gets the request and answers
    /// precisely.
    /// </summary>
    public double ContextFitMargin { get; set; } = 1.5;

    /// <summary>Prefill rate assumed until a worker has reported one (tokens/s).</summary>
    public double DefaultPrefillTokensPerSecond { get; set; } = 1000;

    /// <summary>Request duration assumed for queue waits until the gateway has measured the worker's.</summary>
    public TimeSpan DefaultRequestDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Canonical prompt bytes per token assumed until usage reports calibrate it.</summary>
    public double DefaultBytesPerToken { get; set; } = 4.0;

    /// <summary>Limit on the affinity lookup; past it the in-process index answers (Redis slow or down).</summary>
    public TimeSpan LookupTimeout { get; set; } = TimeSpan.FromMilliseconds(50);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (AffinityKey is not null)
        {
            try
            {
                if (Convert.FromBase64String(AffinityKey).Length < 16)
                {
                    errors.Add($"{SectionName}:AffinityKey must decode to at least 16 bytes.");
                }
            }
            catch (FormatException)
            {
                errors.Add($"{SectionName}:AffinityKey must be base64.");
            }
        }

        if (BlockBytes is < 64 or > 1 << 20)
        {
            errors.Add($"{SectionName}:BlockBytes must be between 64 and 1048576, not {BlockBytes}.");
        }

        if (NewConversationLoadMargin < 0 || double.IsNaN(NewConversationLoadMargin))
        {
            errors.Add($"{SectionName}:NewConversationLoadMargin must not be negative, not {NewConversationLoadMargin}.");
        }

        if (HotSpotLoad <= 0 || DefaultPrefillTokensPerSecond <= 0 || DefaultBytesPerToken <= 0)
        {
            errors.Add($"{SectionName}:HotSpotLoad, DefaultPrefillTokensPerSecond and DefaultBytesPerToken must be positive.");
        }

        if (AffinityTtl <= TimeSpan.Zero || SessionTtl <= TimeSpan.Zero || LookupTimeout <= TimeSpan.Zero || DefaultRequestDuration <= TimeSpan.Zero)
        {
            errors.Add($"{SectionName}: AffinityTtl, SessionTtl, LookupTimeout and DefaultRequestDuration must be positive.");
        }

        if (SpreadTolerance < TimeSpan.Zero)
        {
            errors.Add($"{SectionName}:SpreadTolerance must not be negative, not {SpreadTolerance}.");
        }

        if (SpreadToleranceRatio is < 0 or > 1 || double.IsNaN(SpreadToleranceRatio))
        {
            errors.Add($"{SectionName}:SpreadToleranceRatio must be between 0 and 1, not {SpreadToleranceRatio}.");
        }

        if (ContextFitMargin is < 1 or > 10 || double.IsNaN(ContextFitMargin))
        {
            errors.Add($"{SectionName}:ContextFitMargin must be between 1 and 10 (below 1 an estimate error would exclude workers that fit), not {ContextFitMargin}.");
        }

        if (!ConfiguredRoutingPolicy.Names.Contains(Policy))
        {
            errors.Add($"{SectionName}:Policy must be one of {string.Join(", ", ConfiguredRoutingPolicy.Names)}, not '{Policy}'.");
        }

        if (MaxInProcessBlocks < 1000)
        {
            errors.Add($"{SectionName}:MaxInProcessBlocks must be at least 1000, not {MaxInProcessBlocks}.");
        }

        return errors;
    }
}
