using GpuFleet.Worker.Engine.Compute;
using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine.Scheduling;

/// <summary>
/// The single thread that owns the context (llama.cpp's, or a cost model's: <see cref="IComputeBackend"/>). Each step builds one batch: the next token of
/// every decoding request plus prefill chunks of admitted prompts (so a long prompt never stalls the
/// others), decodes it, samples per request and streams tokens into each request's channel. Which slot a request
/// gets is the <see cref="SlotTable"/>'s choice, the blocks held are <see cref="BlockHoldings"/>' and the status is
/// built by <see cref="EngineStatusBuilder"/>; all three are used from this thread only.
/// </summary>
internal sealed class Scheduler
{
    private const string StoppedMessage = "The worker stopped before this request finished; retry it.";
    private readonly LlamaModel _model;
    private readonly IComputeBackend _backend;
    private readonly EngineOptions _options;
    private readonly AdmissionQueue _queue;
    private readonly PrefixSnapshotCache _snapshots;
    private readonly BlockHoldings _holdings;
    private readonly EngineStatusBuilder _status = new();
    private readonly ThroughputMeter _meter;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly List<ActiveGeneration> _active = [];
    private readonly List<ActiveGeneration> _prefillOrder = [];
    private readonly Comparison<ActiveGeneration> _prefillPriority;
    private readonly Func<PendingRequest, bool> _fitsInPool;
    private readonly Func<PendingRequest, bool> _awaitsSharedPrefill;
    private long _overdueBefore;
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _pieceBuffer = new byte[256];
    private IComputeContext? _context;
    /// <summary>
    /// Tokens a request may have produced that its client has not read yet. Beyond it the request sits out the decode
    /// steps until its reader catches up: a client that stops reading (or reads slowly) holds neither the worker's
    /// memory (the output channel never blocks the scheduler, so it would grow to the whole answer) nor compute that
    /// other requests could use. A reading client is never near it: the HTTP writer drains the channel each token.
    /// </summary>
    internal const int UnreadTokenLimit = 1024;

    private static readonly TimeSpan ReaderWaitPoll = TimeSpan.FromMilliseconds(5);

    /// <summary>Fewer shared tokens than this (a chat template's opening) are computed again rather than waited for.</summary>
    internal const int MinSharedPrefillTokens = 256;

    private ITokenBatch? _batch;
    private SlotTable? _slots;
    private long _step;
    private int _contextPerRequest;

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
        _holdings = new BlockHoldings(_snapshots);
        _prefillPriority = ComparePrefillPriority;
        _fitsInPool = FitsInPool;
        _awaitsSharedPrefill = AwaitsSharedPrefill;
    }

    /// <summary>Completes when the context is created and measured (or faults if that failed).</summary>
    public Task Started => _started.Task;

    public Task Stopped => _stopped.Task;

    /// <summary>Test hook: when it returns true, the next decode is treated as failed.</summary>
    public Func<bool>? InjectDecodeFailure { get; set; }

    /// <summary>The most tokens one request can hold: the whole shared KV pool (set once the context exists).</summary>
    public int ContextPerRequest => Volatile.Read(ref _contextPerRequest);

    private SlotTable Slots => _slots!;

    /// <summary>The current status, from any thread: what this thread last published, completed with the live counters.</summary>
    public EngineStatus ReadStatus(long rejected) => _status.Read(_queue, _options.QueueCapacity, _snapshots, _meter, rejected);

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
            EngineLog.EngineStopped(_logger, _status.Completed, aborted);
            _stopped.SetResult();
        }
    }

    private void Initialize()
    {
        _context = _backend.CreateContext(_options, _logger);
        _batch = _context.CreateBatch(_options.BatchSize);
        _slots = new SlotTable(_options.Slots, _context, _options.PrefixReuse, _snapshots, _holdings, _logger);
        Volatile.Write(ref _contextPerRequest, _context.ContextPerSequence);

        var state = _slots.State;
        EngineLog.EngineStarted(_logger, _options.Slots, _context.ContextSize, _context.ContextPerSequence, _options.BatchSize, _backend.Architecture,
            state.CanTrimTail ? "KV trim" : _snapshots.Enabled ? "state snapshot" : "no", state.PerSequence, state.PerToken);
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
                    Slots.Reset(active.Slot);
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
        while (Slots.AnyFree && _queue.TryDequeue(_fitsInPool, _awaitsSharedPrefill) is { } pending)
        {
            if (pending.Cancellation.IsCancellationRequested)
            {
                CompleteWithoutWork(pending, FinishReason.Cancelled, null);
                continue;
            }

            var (slot, reused) = Slots.Assign(pending.Prompt);
            // The slot is about to hold this prompt: its gateway blocks replace whatever the slot held.
            _holdings.Set(slot, pending.Request.PrefixBlocks.Count > 0 ? pending.Request.PrefixBlocks : BlockHoldings.Within(slot.Blocks, reused));
            var active = new ActiveGeneration(pending, slot, reused, _time.GetTimestamp());
            slot.Active = active;
            Slots.Touch(slot);
            _active.Add(active);
            EngineMetrics.Admitted(_time.GetElapsedTime(pending.EnqueuedAt, active.AdmittedAt));
            _status.Admitted(pending.Prompt.Length, reused);
        }

        if (_active.Count != admitted)
        {
            PublishStatus();
        }
    }

    /// <summary>
    /// Admission against the shared KV pool: the prompts and generated tokens of the running requests plus this prompt
    /// must fit, so an admitted prefill always finds its cells (idle slots' cached prefixes are evicted for it). A request
    /// that does not fit waits, first in line, for running ones to finish; alone it always fits (validation saw to that).
    /// </summary>
    private bool FitsInPool(PendingRequest pending) =>
        _active.Count == 0 || pending.Prompt.Length + _active.Sum(a => a.ReservedCells) <= Slots.Capacity;

    /// <summary>
    /// A waiting prompt stays queued (later ones may pass it) while a running request is prefilling a longer prefix of it
    /// than any cache can give it now, up to a point where that request takes a snapshot: the end of a shared system
    /// turn or of its tools, of its previous turn, of a snapshot interval, or of its prompt. Computed side by side, the same tokens would
    /// cost the GPU twice and each prompt its share of the other's prefill (agents sharing a system prompt arriving
    /// together, a conversation's turn sent again); waited for, the snapshot is restored and only the rest is prefilled.
    /// Only with snapshots: a trimmable KV cache is reused from idle slots alone.
    /// </summary>
    private bool AwaitsSharedPrefill(PendingRequest pending)
    {
        if (!_snapshots.Enabled || !_options.PrefixReuse)
        {
            return false;
        }

        var prompt = pending.Prompt;
        var reusableNow = -1;
        foreach (var active in _active)
        {
            if (active.Decoding)
            {
                continue;
            }

            var common = Math.Min(active.Prompt.AsSpan().CommonPrefixLength(prompt), prompt.Length - 1);
            var point = SnapshotPointWithin(active, common);
            if (point - active.PrefillPosition <= 0 || point < MinSharedPrefillTokens)
            {
                continue;
            }

            if (reusableNow < 0)
            {
                reusableNow = Slots.Reusable(prompt);
            }

            if (point - reusableNow >= MinSharedPrefillTokens)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The furthest point, at most <paramref name="limit"/>, where <see cref="NextPrefillBoundary"/> will snapshot the
    /// request's prefill (0: none).
    /// </summary>
    private int SnapshotPointWithin(ActiveGeneration active, int limit)
    {
        var request = active.Pending.Request;
        var last = active.Prompt.Length - 1;
        var interval = _options.SnapshotInterval > 0 ? limit / _options.SnapshotInterval * _options.SnapshotInterval : 0;
        var point = 0;
        foreach (var candidate in (ReadOnlySpan<int>)[request.ToolsPrefixLength, request.SharedPrefixLength, request.TurnPrefixLength, last, interval])
        {
            if (candidate > point && candidate <= limit && candidate <= last)
            {
                point = candidate;
            }
        }

        return point;
    }

    /// <summary>One step: drop the cancelled, make room, build the batch, decode it, then take each request's share.</summary>
    private void Step()
    {
        FinishCancelled();
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

        var (decodeTokens, prefillTokens) = BuildBatch(_batch!);
        if (decodeTokens + prefillTokens == 0)
        {
            // Every running request waits for its client to read: nothing to compute. Look again shortly (a cancelled
            // request, a reader catching up, a new request) instead of spinning.
            _abort.Token.WaitHandle.WaitOne(ReaderWaitPoll);
            return;
        }

        _step++;
        var stepStarted = _time.GetTimestamp();
        var result = InjectDecodeFailure?.Invoke() == true ? DecodeResult.Failed : _context!.Decode(_batch!);
        if (result != DecodeResult.Ok)
        {
            FailBatch(result);
            return;
        }

        foreach (var active in _active.ToList())
        {
            Advance(active);
        }

        _meter.Record(prefillTokens, decodeTokens);
        EngineMetrics.Stepped(decodeTokens, prefillTokens, _time.GetElapsedTime(stepStarted));
    }

    private void FinishCancelled()
    {
        foreach (var active in _active.ToList())
        {
            if (active.Pending.Cancellation.IsCancellationRequested)
            {
                Finish(active, FinishReason.Cancelled, null);
            }
        }
    }

    /// <summary>
    /// Frees KV cells for <paramref name="cells"/> more tokens: first the cached prefixes of idle slots; then, if the
    /// running requests alone fill the pool, it ends the decoding request holding the most cells with finish_reason
    /// length, as a full context would.
    /// </summary>
    private void MakeRoom(int cells)
    {
        if (Slots.EvictIdle(cells))
        {
            return;
        }

        while (Slots.UsedCells + cells > Slots.Capacity && _active.Where(a => a.Decoding).MaxBy(a => a.Slot.CachedCount) is { } largest)
        {
            EngineLog.ContextFull(_logger, largest.Slot.CachedCount);
            cells -= 1; // its decode token no longer needs a cell
            Finish(largest, FinishReason.Length, null);
            Slots.Reset(largest.Slot);
        }
    }

    /// <summary>
    /// The next token of every decoding request, then prefill chunks of the others within what the batch and the pool
    /// have left, shortest remaining prompt first (<see cref="ComparePrefillPriority"/>); a request's chunk stops where a
    /// snapshot is wanted (<see cref="NextPrefillBoundary"/>). Behind the first prompt's chunk, only prompts that end in
    /// this step take the room left.
    /// </summary>
    private (int DecodeTokens, int PrefillTokens) BuildBatch(ITokenBatch batch)
    {
        batch.Clear();
        var decodeTokens = 0;
        foreach (var active in _active)
        {
            active.TokensInBatch = 0;
            active.LogitsIndex = -1;
            active.SnapshotAfterStep = false;
            if (active.Decoding && active.Pending.Output.Reader.Count < UnreadTokenLimit)
            {
                active.LogitsIndex = batch.Add(active.NextToken, active.Slot.CachedCount, active.Slot.Sequence, wantLogits: true);
                active.TokensInBatch = 1;
                decodeTokens++;
            }
        }

        var prefillTokens = 0;
        var budget = Math.Max(0, Math.Min(batch.Capacity - batch.Count, Slots.Capacity - Slots.UsedCells - decodeTokens));
        if (decodeTokens > 0)
        {
            // Running streams wait for this step: a long prefill advances in chunks that bound their inter-token gap.
            budget = Math.Min(budget, _options.PrefillChunkTokens);
        }

        // Shortest remaining prompt first (EngineOptions.PrefillOvertakeLimit): a later turn's few hundred new tokens do not
        // wait behind a cold 16k-token prompt admitted before it, which would add that prompt's whole prefill to their first token.
        _prefillOrder.Clear();
        foreach (var active in _active)
        {
            if (!active.Decoding)
            {
                _prefillOrder.Add(active);
            }
        }

        // The limit is in the engine's time: a cost model run at a speed-up reaches it that much sooner in real time.
        _overdueBefore = _time.GetTimestamp() - (long)(_options.PrefillOvertakeLimit.TotalSeconds / _backend.TimeScale * _time.TimestampFrequency);
        _prefillOrder.Sort(_prefillPriority);
        foreach (var active in _prefillOrder)
        {
            if (budget == 0)
            {
                break;
            }

            var (end, snapshotAtEnd, shared) = NextPrefillBoundary(active);
            var start = active.PrefillPosition;
            var count = Math.Min(budget, end - start);
            if (prefillTokens > 0 && start + count < active.Prompt.Length)
            {
                // After the first prompt, only prompts that reach their first token in this step join it: a chunk that merely
                // advances a prompt delays the first one's first token by its own prefill time (~0.5 s for a 511-token leftover
                // on a 3090) to save that prompt one step's fixed cost (~30 ms). Filling the short steps that end at a snapshot
                // boundary or hold a prompt's last token cost a cold leader 1-1.5 s per follower prefilling beside it.
                continue;
            }

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

        return (decodeTokens, prefillTokens);
    }

    /// <summary>After a decoded batch: the request's tokens join its slot, a snapshot is taken where wanted, the next token sampled.</summary>
    private void Advance(ActiveGeneration active)
    {
        if (active.TokensInBatch == 0)
        {
            return;
        }

        if (active.Decoding)
        {
            active.Slot.Append(active.NextToken);
        }
        else
        {
            active.Slot.Append(active.Prompt.AsSpan(active.PrefillPosition, active.TokensInBatch));
            active.PrefillPosition += active.TokensInBatch;
            if (active.SnapshotAfterStep)
            {
                Slots.Snapshot(active.Slot, active.SnapshotShared ? SnapshotKind.Shared : SnapshotKind.Prompt);
            }
        }

        if (active.LogitsIndex >= 0)
        {
            SampleAndEmit(active);
        }
    }

    /// <summary>
    /// Prefill order: prompts admitted longer than <see cref="EngineOptions.PrefillOvertakeLimit"/> ago first, in admission
    /// order; then the fewest prompt tokens left; then admission order.
    /// </summary>
    private int ComparePrefillPriority(ActiveGeneration a, ActiveGeneration b)
    {
        var aOverdue = a.AdmittedAt < _overdueBefore;
        var bOverdue = b.AdmittedAt < _overdueBefore;
        if (aOverdue != bOverdue)
        {
            return aOverdue ? -1 : 1;
        }

        var byLeft = aOverdue ? 0 : (a.Prompt.Length - a.PrefillPosition).CompareTo(b.Prompt.Length - b.PrefillPosition);
        return byLeft != 0 ? byLeft : a.AdmittedAt.CompareTo(b.AdmittedAt);
    }

    /// <summary>
    /// Where this step's prefill chunk of a request should stop: the prompt's end, or earlier at a point
    /// where a snapshot is wanted: the end of the shared prefix (system prompt and tools, which other
    /// conversations restore) and of the tools alone (which conversations with another system prompt restore), the end of the last complete message (which the conversation's next turn
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

        var tools = request.ToolsPrefixLength;
        if (tools > position && tools < end)
        {
            end = tools;
        }

        if (_options.SnapshotInterval > 0)
        {
            var next = ((position / _options.SnapshotInterval) + 1) * _options.SnapshotInterval;
            end = Math.Min(end, next);
        }

        // Interval snapshots are sharing points too: a later prompt snapshot of the same request must not replace them.
        return (end, true, end == shared || end == tools || (_options.SnapshotInterval > 0 && end % _options.SnapshotInterval == 0 && end != request.TurnPrefixLength));
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
        _status.Generated();
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
        else if (active.Generated >= request.MaxTokens || active.Slot.CachedCount >= _context!.ContextPerSequence)
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
            Slots.Reset(active.Slot);
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
        Slots.Touch(active.Slot);
        _status.Finished(reason);
        if (reason != FinishReason.Error)
        {
            // End of a turn is the prefix the next turn of a conversation extends (when the reply is re-rendered as generated).
            Slots.Snapshot(active.Slot, SnapshotKind.TurnEnd);
        }

        // Where a slot's tail cannot be trimmed, its content now serves only a prompt that extends all of it, as the
        // turn-end snapshot does: the snapshots claim the blocks from here on, so that once they are evicted the gateway
        // is not told of a prefix (a system prompt, tools) that no other conversation could restore here.
        if (!Slots.State.CanTrimTail && _snapshots.Enabled)
        {
            _holdings.Set(active.Slot, []);
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
            _status.CancelledWaiting();
        }

        _queue.Release();
        Complete(pending, new CompletionEvent(reason, new GenerationUsage(pending.Prompt.Length, 0, 0, elapsed, TimeSpan.Zero, elapsed), string.Empty, error));
    }

    private static void Complete(PendingRequest pending, CompletionEvent completion)
    {
        pending.WakeOnCancel.Dispose();
        pending.Sampler.Dispose();
        pending.Output.Writer.TryWrite(completion);
        pending.Output.Writer.TryComplete();
        pending.Completion.TrySetResult(completion);
    }

    private void PublishStatus() => _status.Publish(Slots, _active, _holdings, _context!.ContextPerSequence);
}
