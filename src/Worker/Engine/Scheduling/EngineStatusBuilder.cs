namespace GpuFleet.Worker.Engine.Scheduling;

/// <summary>
/// The engine's status: the scheduler's totals, the view it publishes after each change (slots, KV pool, holdings), and
/// that view completed with what other threads keep (queue, host cache, throughput, rejections) when someone reads it.
/// The scheduler thread writes; any thread reads.
/// </summary>
internal sealed class EngineStatusBuilder
{
    private EngineStatus _published = new();

    // Totals, written by the scheduler thread only.
    private long _promptTokens;
    private long _reusedTokens;
    private long _generatedTokens;
    private long _completed;
    private long _failed;
    private long _cancelled;

    /// <summary>Requests that ended other than by an error or a cancellation.</summary>
    public long Completed => _completed;

    /// <summary>The last published view (empty before the context exists).</summary>
    public EngineStatus Published => Volatile.Read(ref _published);

    public void Admitted(int promptTokens, int reusedTokens)
    {
        _promptTokens += promptTokens;
        _reusedTokens += reusedTokens;
    }

    public void Generated() => _generatedTokens++;

    /// <summary>A request that held a slot ended with <paramref name="reason"/>.</summary>
    public void Finished(FinishReason reason)
    {
        switch (reason)
        {
            case FinishReason.Error:
                _failed++;
                break;
            case FinishReason.Cancelled:
                _cancelled++;
                break;
            default:
                _completed++;
                break;
        }
    }

    /// <summary>A request was cancelled before it got a slot.</summary>
    public void CancelledWaiting() => _cancelled++;

    /// <summary>Publishes the scheduler's view: its slots and pool, the running requests' pending prefill, the held blocks.</summary>
    public void Publish(SlotTable slots, IReadOnlyList<ActiveGeneration> active, BlockHoldings holdings, int contextPerRequest)
    {
        var running = slots.Running;
        long kvTokens = slots.UsedCells;
        var (held, holdingsVersion) = holdings.Current(slots.All);
        var state = slots.State;
        Volatile.Write(ref _published, new EngineStatus
        {
            HeldPrefixBlocks = held,
            HoldingsVersion = holdingsVersion,
            PrefillingPrefixBlocks = holdings.Prefilling(slots.All),
            PendingPrefillTokens = active.Sum(a => a.Decoding ? 0L : a.Prompt.Length - a.PrefillPosition),
            RunningSlots = running,
            FreeSlots = slots.All.Count - running,
            TotalSlots = slots.All.Count,
            ContextPerRequest = contextPerRequest,
            KvTokensUsed = kvTokens,
            KvTokensTotal = slots.Capacity,
            ReservedKvTokens = active.Sum(a => a.ReservedCells),
            KvBytesUsed = (slots.Holding * state.PerSequence) + (kvTokens * state.PerToken),
            KvBytesTotal = (slots.All.Count * state.PerSequence) + (slots.Capacity * state.PerToken),
            PromptTokensTotal = _promptTokens,
            ReusedPromptTokensTotal = _reusedTokens,
            GeneratedTokensTotal = _generatedTokens,
            RequestsCompleted = _completed,
            RequestsFailed = _failed,
            RequestsCancelled = _cancelled,
        });
    }

    /// <summary>The published view completed with the queue, the host cache, throughput and rejections, read now.</summary>
    public EngineStatus Read(AdmissionQueue queue, int queueCapacity, PrefixSnapshotCache snapshots, ThroughputMeter meter, long rejected)
    {
        var (prefill, decode) = meter.Rates();
        var status = Published;
        return status with
        {
            QueueDepth = queue.Waiting,
            PendingPrefillTokens = status.PendingPrefillTokens + queue.WaitingPromptTokens,
            QueueCapacity = queueCapacity,
            HostCacheEntries = snapshots.Count,
            HostCacheBytes = snapshots.Bytes,
            HostCacheCapacityBytes = snapshots.CapacityBytes,
            HostCacheEvictions = snapshots.Evictions,
            PrefillTokensPerSecond = prefill,
            DecodeTokensPerSecond = decode,
            RequestsRejected = rejected,
            Stopping = queue.IsClosed,
        };
    }
}
