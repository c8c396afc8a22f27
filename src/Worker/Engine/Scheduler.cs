using GpuFleet.Worker.Engine.Compute;
using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine;

/// <summary>
/// The single thread that owns the context (llama.cpp's, or a cost model's: <see cref="IComputeBackend"/>). Each step builds one batch: the next token of
/// every decoding request plus prefill chunks of admitted prompts (so a long prompt never stalls the
/// others), decodes it, samples per request and streams tokens into each request's channel.
/// </summary>
internal sealed class Scheduler
{
    private readonly LlamaModel _model;
    private readonly IComputeBackend _backend;
    private readonly EngineOptions _options;
    private readonly AdmissionQueue _queue;
    private readonly PrefixSnapshotCache _snapshots;
    private readonly ThroughputMeter _meter;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly List<ActiveGeneration> _active = [];
    private IReadOnlyList<ulong> _holdings = [];
    private long _holdingsVersion;
    private bool _holdingsChanged;
    private const string StoppedMessage = "The worker stopped before this request finished; retry it.";
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _pieceBuffer = new byte[256];
    private SequenceSlot[] _slots = [];
    private IComputeContext? _context;
    private ITokenBatch? _batch;
    private long _clock;
    private long _step;
    private long _stateBytesPerSequence;
    private long _stateBytesPerToken;
    private int _contextPerRequest;
    private bool _canTrimTail;
    private EngineStatus _status = new();

    // Totals, written by the scheduler thread only.
    private long _promptTokens;
    private long _reusedTokens;
    private long _generatedTokens;
    private long _completed;
    private long _failed;
    private long _cancelled;

    public Scheduler(LlamaModel model, IComputeBackend backend, EngineOptions options, AdmissionQueue queue, TimeProvider time, ILogger logger)
    {
        _model = model;
        _backend = backend;
        _options = options;
        _queue = queue;
        _time = time;
        _logger = logger;
        _meter = new ThroughputMeter(time, TimeSpan.FromSeconds(10));
        // Snapshots are how hybrid/recurrent models reuse prefixes; plain attention trims its KV instead.
        _snapshots = new PrefixSnapshotCache(options.PrefixReuse && backend.UsesStateSnapshots ? options.HostCacheBytes : 0);
    }

    /// <summary>Completes when the context is created and measured (or faults if that failed).</summary>
    public Task Started => _started.Task;

    public Task Stopped => _stopped.Task;

    /// <summary>Test hook: when it returns true, the next decode is treated as failed.</summary>
    public Func<bool>? InjectDecodeFailure { get; set; }

    public EngineStatus Status => Volatile.Read(ref _status);

    public PrefixSnapshotCache Snapshots => _snapshots;

    /// <summary>The most tokens one request can hold: the whole shared KV pool (set once the context exists).</summary>
    public int ContextPerRequest => Volatile.Read(ref _contextPerRequest);

    public ThroughputMeter Meter => _meter;

    public void Abort() => _abort.Cancel();

    public void Run()
    {
        try
        {
            Initialize();
            _started.SetResult();
        }
#pragma warning disable CA1031 // Reported to the starter through the task.
        catch (Exception ex)
        {
            _started.SetException(ex);
            _stopped.SetResult();
            return;
        }
#pragma warning restore CA1031

        try
        {
            Loop();
        }
        finally
        {
            var aborted = _active.Count;
            foreach (var active in _active.ToList())
            {
                // Not the caller's doing: the stream must end with an error, never a clean-looking stop.
                Finish(active, FinishReason.Interrupted, StoppedMessage);
            }

            while (_queue.TryDequeue() is { } pending)
            {
                aborted++;
                CompleteWithoutWork(pending, FinishReason.Interrupted, StoppedMessage);
            }

            (_batch as IDisposable)?.Dispose();
            _context?.Dispose();
            EngineLog.EngineStopped(_logger, _completed, aborted);
            _stopped.SetResult();
        }
    }

    private void Initialize()
    {
        _context = _backend.CreateContext(_options, _logger);
        (_stateBytesPerSequence, _stateBytesPerToken, _canTrimTail) = _context.State;
        _batch = _context.CreateBatch(_options.BatchSize);
        _slots = Enumerable.Range(0, _options.Slots).Select(i => new SequenceSlot(i)).ToArray();
        Volatile.Write(ref _contextPerRequest, _context.ContextPerSequence);

        EngineLog.EngineStarted(_logger, _options.Slots, _context.ContextSize, _context.ContextPerSequence, _options.BatchSize, _backend.Architecture,
            _canTrimTail ? "KV trim" : _snapshots.Enabled ? "state snapshot" : "no", _stateBytesPerSequence, _stateBytesPerToken);
        PublishStatus();
    }

    private void Loop()
    {
        while (true)
        {
            if (_abort.IsCancellationRequested)
            {
                return;
            }

            foreach (var cancelled in _queue.RemoveCancelled())
            {
                CompleteWithoutWork(cancelled, FinishReason.Cancelled, null);
            }

            Admit();
            if (_active.Count == 0)
            {
                if (_queue.IsClosed && _queue.Waiting == 0)
                {
                    return;
                }

                PublishStatus();
                _queue.WaitForWork(_abort.Token);
                continue;
            }

            try
            {
                Step();
            }
#pragma warning disable CA1031 // A bug in one step must not take the worker down: fail what ran, go on.
            catch (Exception ex)
            {
                EngineLog.SchedulerError(_logger, ex, _active.Count);
                foreach (var active in _active.ToList())
                {
                    ResetSlot(active.Slot);
                    Finish(active, FinishReason.Error, "Internal engine error.");
                }
            }
#pragma warning restore CA1031

            PublishStatus();
        }
    }

    private void Admit()
    {
        var admitted = _active.Count;
        AdmitWaiting();
        if (_active.Count != admitted)
        {
            PublishStatus();
        }
    }

    private void AdmitWaiting()
    {
        while (_slots.Any(s => s.Active is null) && _queue.TryDequeue(FitsInPool) is { } pending)
        {
            if (pending.Cancellation.IsCancellationRequested)
            {
                CompleteWithoutWork(pending, FinishReason.Cancelled, null);
                continue;
            }

            var (slot, reused) = AssignSlot(pending.Prompt);
            // The slot is about to hold this prompt: its gateway blocks replace whatever the slot held.
            SetBlocks(slot, pending.Request.PrefixBlocks.Count > 0 ? pending.Request.PrefixBlocks : HeldWithin(slot.Blocks, reused));
            var active = new ActiveGeneration(pending, slot, reused, _time.GetTimestamp());
            slot.Active = active;
            slot.LastUsed = ++_clock;
            _active.Add(active);
            EngineMetrics.Admitted(_time.GetElapsedTime(pending.EnqueuedAt, active.AdmittedAt));
            _promptTokens += pending.Prompt.Length;
            _reusedTokens += reused;
        }
    }

    /// <summary>
    /// Admission against the shared KV pool: the prompts and generated tokens of the running requests plus this prompt
    /// must fit, so an admitted prefill always finds its cells (idle slots' cached prefixes are evicted for it). A request
    /// that does not fit waits, first in line, for running ones to finish; alone it always fits (validation saw to that).
    /// </summary>
    private bool FitsInPool(PendingRequest pending) =>
        _active.Count == 0 || pending.Prompt.Length + _active.Sum(a => (long)a.Prompt.Length + a.Generated) <= _context!.ContextSize;

    private int UsedCells() => _slots.Sum(s => s.Cached.Count);

    /// <summary>
    /// Frees KV cells for <paramref name="cells"/> more tokens: first the cached prefixes of idle slots, least recently
    /// used first (their state was snapshotted when their turn ended); then, if the running requests alone fill the pool,
    /// it ends the decoding request holding the most cells with finish_reason length, as a full context would.
    /// </summary>
    private void MakeRoom(int cells, SequenceSlot? keep = null)
    {
        var capacity = _context!.ContextSize;
        foreach (var idle in _slots.Where(s => s.Active is null && s != keep && s.Cached.Count > 0).OrderBy(s => s.LastUsed).ToList())
        {
            if (UsedCells() + cells <= capacity)
            {
                return;
            }

            ResetSlot(idle);
        }

        while (UsedCells() + cells > capacity && _active.Where(a => a.Decoding).MaxBy(a => a.Slot.Cached.Count) is { } largest)
        {
            EngineLog.ContextFull(_logger, largest.Slot.Cached.Count);
            cells -= 1; // its decode token no longer needs a cell
            Finish(largest, FinishReason.Length, null);
            ResetSlot(largest.Slot);
        }
    }

    /// <summary>
    /// Picks the free slot that lets the prompt skip the most prefill: a slot whose cached tokens share a
    /// prefix with it (trimmed to that prefix where the model allows), or a host snapshot restored into
    /// the least recently used free slot. At least one prompt token is always decoded, for its logits.
    /// </summary>
    private (SequenceSlot Slot, int Reused) AssignSlot(int[] prompt)
    {
        var context = _context!;
        var maxReuse = _options.PrefixReuse ? prompt.Length - 1 : 0;
        SequenceSlot? best = null;
        var bestReuse = 0;
        foreach (var slot in _slots.Where(s => s.Active is null))
        {
            var common = CommonPrefix(slot.Cached, prompt);
            // Without tail trimming, a slot's state is only usable when all of it is a prefix of the prompt. With it,
            // trimming is worth it only when it keeps at least as much as it throws away: sharing just the chat
            // template's first tokens must not cost another conversation's whole cached prefix.
            var reuse = _canTrimTail ? Math.Min(common, maxReuse)
                : common == slot.Cached.Count && common <= maxReuse ? common : 0;
            if (reuse < slot.Cached.Count - reuse)
            {
                reuse = 0;
            }

            // Equal reuse: an empty slot first (nothing cached is lost), then the least recently used.
            if (best is null || reuse > bestReuse || (reuse == bestReuse && Emptier(slot, best)))
            {
                best = slot;
                bestReuse = reuse;
            }
        }

        var chosen = best!;
        if (_snapshots.Enabled && _snapshots.FindLongestPrefix(prompt, maxReuse) is { } snapshot && snapshot.Tokens.Length > bestReuse)
        {
            // Overwrite the least recently used free slot; its own state was snapshotted when its turn ended.
            chosen = _slots.Where(s => s.Active is null).OrderBy(s => s.Cached.Count > 0).ThenBy(s => s.LastUsed).First();
            context.ClearSequence(chosen.Sequence);
            chosen.Cached.Clear();
            MakeRoom(snapshot.Tokens.Length, keep: chosen);
            if (context.TrySetSequenceState(chosen.Sequence, snapshot.State))
            {
                chosen.Cached.AddRange(snapshot.Tokens);
                return (chosen, snapshot.Tokens.Length);
            }

            EngineLog.SnapshotRestoreFailed(_logger, snapshot.Tokens.Length, chosen.Sequence);
            ResetSlot(chosen);
            return (chosen, 0);
        }

        if (bestReuse == chosen.Cached.Count)
        {
            return (chosen, bestReuse);
        }

        if (bestReuse > 0 && context.TryRemoveTail(chosen.Sequence, bestReuse))
        {
            chosen.Cached.RemoveRange(bestReuse, chosen.Cached.Count - bestReuse);
            return (chosen, bestReuse);
        }

        ResetSlot(chosen);
        return (chosen, 0);
    }

    private static bool Emptier(SequenceSlot slot, SequenceSlot than) =>
        (slot.Cached.Count == 0) != (than.Cached.Count == 0) ? slot.Cached.Count == 0 : slot.LastUsed < than.LastUsed;

    private void Step()
    {
        var context = _context!;
        var batch = _batch!;
        foreach (var active in _active.ToList())
        {
            if (active.Pending.Cancellation.IsCancellationRequested)
            {
                Finish(active, FinishReason.Cancelled, null);
            }
        }

        if (_active.Count == 0)
        {
            return;
        }

        // Cells for this step: one per decoding request, and at least one for a waiting prefill.
        MakeRoom(_active.Count(a => a.Decoding) + (_active.Any(a => !a.Decoding) ? 1 : 0));
        if (_active.Count == 0)
        {
            return;
        }

        batch.Clear();
        var decodeTokens = 0;
        foreach (var active in _active)
        {
            active.TokensInBatch = 0;
            active.LogitsIndex = -1;
            active.SnapshotAfterStep = false;
            if (active.Decoding)
            {
                active.LogitsIndex = batch.Add(active.NextToken, active.Slot.Cached.Count, active.Slot.Sequence, wantLogits: true);
                active.TokensInBatch = 1;
                decodeTokens++;
            }
        }

        var prefillTokens = 0;
        var budget = Math.Max(0, Math.Min(batch.Capacity - batch.Count, context.ContextSize - UsedCells() - decodeTokens));
        if (decodeTokens > 0)
        {
            // Running streams wait for this step: a long prefill advances in chunks that bound their inter-token gap.
            budget = Math.Min(budget, _options.PrefillChunkTokens);
        }
        foreach (var active in _active)
        {
            if (active.Decoding || budget == 0)
            {
                continue;
            }

            var (end, snapshotAtEnd, shared) = NextPrefillBoundary(active);
            var start = active.PrefillPosition;
            var count = Math.Min(budget, end - start);
            for (var i = 0; i < count; i++)
            {
                var position = start + i;
                var last = position == active.Prompt.Length - 1;
                var index = batch.Add(active.Prompt[position], position, active.Slot.Sequence, wantLogits: last);
                if (last)
                {
                    active.LogitsIndex = index;
                }
            }

            active.TokensInBatch = count;
            active.SnapshotAfterStep = snapshotAtEnd && start + count == end;
            active.SnapshotShared = shared;
            prefillTokens += count;
            budget -= count;
        }

        _step++;
        var stepStarted = _time.GetTimestamp();
        var result = InjectDecodeFailure?.Invoke() == true ? DecodeResult.Failed : context.Decode(batch);
        if (result != DecodeResult.Ok)
        {
            FailBatch(result);
            return;
        }

        foreach (var active in _active.ToList())
        {
            if (active.TokensInBatch == 0)
            {
                continue;
            }

            if (active.Decoding)
            {
                active.Slot.Cached.Add(active.NextToken);
            }
            else
            {
                active.Slot.Cached.AddRange(active.Prompt.AsSpan(active.PrefillPosition, active.TokensInBatch));
                active.PrefillPosition += active.TokensInBatch;
                if (active.SnapshotAfterStep)
                {
                    Snapshot(active.Slot, active.SnapshotShared ? SnapshotKind.Shared : SnapshotKind.Prompt);
                }
            }

            if (active.LogitsIndex >= 0)
            {
                SampleAndEmit(active);
            }
        }

        _meter.Record(prefillTokens, decodeTokens);
        EngineMetrics.Stepped(decodeTokens, prefillTokens, _time.GetElapsedTime(stepStarted));
    }

    /// <summary>
    /// Where this step's prefill chunk of a request should stop: the prompt's end, or earlier at a point
    /// where a snapshot is wanted: the end of the shared prefix (system prompt and tools, which other
    /// conversations restore), the end of the last complete message (which the conversation's next turn
    /// extends; without a known boundary the token before the last, which a repeated prompt extends), and every
    /// SnapshotInterval tokens.
    /// </summary>
    private (int End, bool Snapshot, bool Shared) NextPrefillBoundary(ActiveGeneration active)
    {
        var length = active.Prompt.Length;
        var position = active.PrefillPosition;
        if (!_snapshots.Enabled || position >= length - 1)
        {
            return (length, false, false);
        }

        var request = active.Pending.Request;
        var end = request.TurnPrefixLength > position && request.TurnPrefixLength < length - 1 ? request.TurnPrefixLength : length - 1;
        var shared = request.SharedPrefixLength;
        if (shared > position && shared < end)
        {
            end = shared;
        }

        if (_options.SnapshotInterval > 0)
        {
            var next = ((position / _options.SnapshotInterval) + 1) * _options.SnapshotInterval;
            end = Math.Min(end, next);
        }

        // Interval snapshots are sharing points too: a later prompt snapshot of the same request must not replace them.
        return (end, true, end == shared || (_options.SnapshotInterval > 0 && end % _options.SnapshotInterval == 0 && end != request.TurnPrefixLength));
    }

    private void SampleAndEmit(ActiveGeneration active)
    {
        int token;
        try
        {
            token = _context!.Sample(active.Sampler, active.LogitsIndex, active.Generated);
        }
        catch (LlamaNativeException)
        {
            // This request's own constraints (its grammar) left no token: it alone ends, the batch goes on.
            Finish(active, FinishReason.Error, "No token is allowed here (the grammar admits no continuation).");
            return;
        }

        if (active.Generated == 0)
        {
            active.FirstTokenAt = _time.GetTimestamp();
        }

        active.Generated++;
        _generatedTokens++;
        var request = active.Pending.Request;
        if (!request.IgnoreEndOfGeneration && _model.IsEndOfGeneration(token))
        {
            Finish(active, FinishReason.Stop, null);
            return;
        }

        var n = _model.TokenToPiece(token, _pieceBuffer, renderSpecial: false);
        if (n < 0)
        {
            _pieceBuffer = new byte[-n];
            n = _model.TokenToPiece(token, _pieceBuffer, renderSpecial: false);
        }

        var text = active.Text.Append(_pieceBuffer.AsSpan(0, Math.Max(n, 0)));
        active.Pending.Output.Writer.TryWrite(new TokenEvent(token, text) { Step = _step });
        if (active.Text.Stopped)
        {
            Finish(active, FinishReason.Stop, null);
        }
        else if (active.Generated >= request.MaxTokens || active.Slot.Cached.Count >= _context!.ContextPerSequence)
        {
            Finish(active, FinishReason.Length, null);
        }
        else
        {
            active.Decoding = true;
            active.NextToken = token;
        }
    }

    private void FailBatch(DecodeResult result)
    {
        var failed = _active.Where(a => a.TokensInBatch > 0).ToList();
        EngineLog.DecodeFailed(_logger, result, failed.Count);
        foreach (var active in failed)
        {
            // A failed decode may leave part of the batch in memory: start these sequences afresh.
            ResetSlot(active.Slot);
            Finish(active, FinishReason.Error, $"The model failed to decode this request's batch ({result}).");
        }
    }

    private void Finish(ActiveGeneration active, FinishReason reason, string? error)
    {
        var now = _time.GetTimestamp();
        var trailing = reason is FinishReason.Stop or FinishReason.Length ? active.Text.Flush() : string.Empty;
        var usage = new GenerationUsage(
            active.Prompt.Length,
            active.Reused,
            active.Generated,
            _time.GetElapsedTime(active.Pending.EnqueuedAt, active.AdmittedAt),
            active.FirstTokenAt == 0 ? TimeSpan.Zero : _time.GetElapsedTime(active.Pending.EnqueuedAt, active.FirstTokenAt),
            _time.GetElapsedTime(active.Pending.EnqueuedAt, now));
        _active.Remove(active);
        active.Slot.Active = null;
        active.Slot.LastUsed = ++_clock;
        if (reason == FinishReason.Error)
        {
            _failed++;
        }
        else
        {
            if (reason == FinishReason.Cancelled)
            {
                _cancelled++;
            }
            else
            {
                _completed++;
            }

            // End of a turn is the prefix the next turn of a conversation extends (when the reply is re-rendered as generated).
            Snapshot(active.Slot, SnapshotKind.TurnEnd);
        }

        // Capacity released and status published before the caller sees the completion, so that a status
        // read or a new request right after it sees the slot free.
        _queue.Release();
        PublishStatus();
        Complete(active.Pending, new CompletionEvent(reason, usage, trailing, error));
    }

    private void CompleteWithoutWork(PendingRequest pending, FinishReason reason, string? error)
    {
        var elapsed = _time.GetElapsedTime(pending.EnqueuedAt);
        if (reason == FinishReason.Cancelled)
        {
            _cancelled++;
        }

        _queue.Release();
        Complete(pending, new CompletionEvent(reason, new GenerationUsage(pending.Prompt.Length, 0, 0, elapsed, TimeSpan.Zero, elapsed), string.Empty, error));
    }

    private void Complete(PendingRequest pending, CompletionEvent completion)
    {
        pending.WakeOnCancel.Dispose();
        pending.Sampler.Dispose();
        pending.Output.Writer.TryWrite(completion);
        pending.Output.Writer.TryComplete();
        pending.Completion.TrySetResult(completion);
    }

    private void Snapshot(SequenceSlot slot, SnapshotKind kind)
    {
        if (!_snapshots.Enabled || slot.Cached.Count == 0)
        {
            return;
        }

        var tokens = slot.Cached.ToArray();
        // A state larger than the whole budget would be copied (device to host) only to be dropped.
        if (!_snapshots.Contains(tokens) && _context!.GetSequenceStateSize(slot.Sequence) <= _snapshots.CapacityBytes)
        {
            _snapshots.Add(tokens, _context.GetSequenceState(slot.Sequence), HeldWithin(slot.Blocks, tokens.Length), kind);
            _holdingsChanged = true; // added, and possibly others evicted
        }
    }

    private void ResetSlot(SequenceSlot slot)
    {
        _context!.ClearSequence(slot.Sequence);
        slot.Cached.Clear();
        SetBlocks(slot, []);
    }

    private void SetBlocks(SequenceSlot slot, IReadOnlyList<PrefixBlock> blocks)
    {
        if (slot.Blocks.Count > 0 || blocks.Count > 0)
        {
            slot.Blocks = blocks;
            _holdingsChanged = true;
        }
    }

    private static IReadOnlyList<PrefixBlock> HeldWithin(IReadOnlyList<PrefixBlock> blocks, int tokens) =>
        blocks.Count == 0 ? [] : [.. blocks.TakeWhile(b => b.TokenEnd <= tokens)];

    /// <summary>The distinct gateway blocks held in slots and host snapshots, recomputed only after a change.</summary>
    private (IReadOnlyList<ulong> Blocks, long Version) Holdings()
    {
        if (_holdingsChanged)
        {
            _holdingsChanged = false;
            var held = new HashSet<ulong>();
            foreach (var blocks in _slots.Select(s => s.Blocks).Concat(_snapshots.Blocks))
            {
                foreach (var block in blocks)
                {
                    held.Add(block.Hash);
                }
            }

            _holdings = [.. held];
            _holdingsVersion++;
        }

        return (_holdings, _holdingsVersion);
    }

    private void PublishStatus()
    {
        var running = _slots.Count(s => s.Active is not null);
        var kvTokens = _slots.Sum(s => (long)s.Cached.Count);
        var sequencesInUse = _slots.Count(s => s.Cached.Count > 0);
        var contextSize = _context?.ContextSize ?? 0;
        var (held, holdingsVersion) = Holdings();
        Volatile.Write(ref _status, new EngineStatus
        {
            HeldPrefixBlocks = held,
            HoldingsVersion = holdingsVersion,
            PendingPrefillTokens = _active.Sum(a => a.Decoding ? 0L : a.Prompt.Length - a.PrefillPosition),
            RunningSlots = running,
            FreeSlots = _slots.Length - running,
            TotalSlots = _slots.Length,
            ContextPerRequest = _context?.ContextPerSequence ?? 0,
            KvTokensUsed = kvTokens,
            KvTokensTotal = contextSize,
            KvBytesUsed = (sequencesInUse * _stateBytesPerSequence) + (kvTokens * _stateBytesPerToken),
            KvBytesTotal = (_slots.Length * _stateBytesPerSequence) + (contextSize * _stateBytesPerToken),
            PromptTokensTotal = _promptTokens,
            ReusedPromptTokensTotal = _reusedTokens,
            GeneratedTokensTotal = _generatedTokens,
            RequestsCompleted = _completed,
            RequestsFailed = _failed,
            RequestsCancelled = _cancelled,
        });
    }

    private static int CommonPrefix(List<int> cached, int[] prompt)
    {
        var n = Math.Min(cached.Count, prompt.Length);
        var i = 0;
        while (i < n && cached[i] == prompt[i])
        {
            i++;
        }

        return i;
    }
}
