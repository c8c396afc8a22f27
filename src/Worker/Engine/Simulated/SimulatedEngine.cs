using System.Threading.Channels;
using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GpuFleet.Worker.Engine.Simulated;

/// <summary>
/// The zero-cost engine (<c>--simulate</c>): answers without a model. Requests are tokenized, validated, admitted
/// and counted exactly as by <see cref="InferenceEngine"/> (same slots, queue bound, refusals, cancellation and
/// stop), but no llama.cpp context is ever created: each answer is a fixed cycle of ordinary vocabulary tokens.
/// Its purpose is to measure everything around the model (the API, the gateway, routing) at no model cost.
/// </summary>
/// <remarks>
/// An answer has <see cref="SimulatedReply.Tokens"/> tokens, then ends as if the model emitted
/// end-of-generation (finish <c>stop</c>); fewer when <c>max_tokens</c> or the slot's context end comes first
/// (<c>length</c>); exactly <c>max_tokens</c> with <c>ignore_eos</c>. Stop sequences are honoured (the same
/// <see cref="TextAssembler"/> as the real engine). A grammar is checked (a bad one is refused) but not followed.
/// When the prompt leaves a <c>&lt;think&gt;</c> block open, the answer closes it first, so the text arrives as
/// content. Usage: real prompt tokens, the answer's tokens, never cached tokens. Status: real slot and queue
/// counts and totals; token rates, KV and host-cache figures are 0, since nothing is prefilled or decoded.
/// With <see cref="SimulatedReply.TokenDelay"/> of zero the whole answer is produced inside <see cref="Submit"/>;
/// otherwise each token waits on a timer, holding the slot as a real generation would.
/// </remarks>
internal sealed class SimulatedEngine : IInferenceEngine
{
    /// <summary>The text every answer cycles through (as many of its tokens as the answer has).</summary>
    internal const string ReplyText = "This answer is simulated: GpuFleet measured everything except the model. ";
    private const string StoppedMessage = "The worker stopped before this request finished; retry it.";

    private readonly LlamaModel _model;
    private readonly EngineOptions _options;
    private readonly SimulatedReply _reply;
    private readonly TimeProvider _time;
    private readonly int[] _cycle;
    private readonly Dictionary<int, byte[]> _pieces = [];
    private readonly int[] _thinkOpen;
    private readonly int[] _thinkClose;
    private readonly Lock _gate = new();
    private readonly LinkedList<Generation> _waiting = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;
    private bool _closed;

    // Totals, guarded by _gate.
    private long _promptTokens;
    private long _generatedTokens;
    private long _completed;
    private long _cancelled;
    private long _rejected;

    private SimulatedEngine(LlamaModel model, EngineOptions options, SimulatedReply reply, TimeProvider time)
    {
        _model = model;
        _options = options;
        _reply = reply;
        _time = time;
        _cycle = model.Tokenize(ReplyText, addSpecial: false, parseSpecial: false);
        _thinkOpen = model.Tokenize("<think>\n", addSpecial: false, parseSpecial: true);
        _thinkClose = model.Tokenize("</think>\n\n", addSpecial: false, parseSpecial: true);
        foreach (var token in _cycle.Concat(_thinkClose))
        {
            _pieces[token] = Piece(model, token);
        }
    }

    public LlamaModel Model => _model;

    public EngineOptions Options => _options;

    /// <summary>The configured context, or the model's training context (4,096 when the vocabulary file names none).</summary>
    public int ContextPerRequest => _options.ContextSize > 0 ? _options.ContextSize
        : _model.TrainingContextLength > 0 ? _model.TrainingContextLength : 4096;

    /// <summary>
    /// Starts serving at once (there is nothing to load beyond the vocabulary). <paramref name="model"/> may be,
    /// and in the worker is, loaded with <c>vocabularyOnly</c>: this engine never reads weights.
    /// </summary>
    public static SimulatedEngine Start(LlamaModel model, EngineOptions options, SimulatedReply? reply = null, ILogger? logger = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        reply ??= new SimulatedReply();
        var errors = options.Validate().Concat(reply.Validate()).ToList();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        var engine = new SimulatedEngine(model, options, reply, time ?? TimeProvider.System);
        SimulatedEngineLog.Started(logger ?? NullLogger.Instance, options.Slots, engine.ContextPerRequest, options.QueueCapacity,
            reply.Tokens, reply.TokenDelay.TotalMilliseconds);
        return engine;
    }

    public Admission Submit(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var rejection = RequestValidation.Validate(request, _model.VocabularySize, ContextPerRequest) ?? CheckGrammar(request);
        if (rejection is not null)
        {
            lock (_gate)
            {
                _rejected++;
            }

            return new Admission(null, rejection);
        }

        // Unbounded for the same reason as the real engine's: the admission bound limits requests, the
        // answer length limits events, and a producer must never wait for a slow reader.
        var output = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var generation = new Generation(request, [.. request.PromptTokens], output, cancellationToken, _time.GetTimestamp());
        // Registered before anyone else can see the request; a waiting request ends at once, a running one at its next token.
        generation.OnCancel = cancellationToken.Register(() => Cancel(generation));
        bool start;
        lock (_gate)
        {
            if (_closed || _running + _waiting.Count >= _options.Slots + _options.QueueCapacity)
            {
                _rejected++;
                generation.OnCancel.Dispose();
                return new Admission(null, RequestValidation.Refusal(_closed ? RejectionReason.ShuttingDown : RejectionReason.Overloaded, _options));
            }

            start = _running < _options.Slots;
            if (start)
            {
                Admit(generation);
            }
            else
            {
                generation.Node = _waiting.AddLast(generation);
            }
        }

        if (start)
        {
            Run(generation);
        }
        else if (cancellationToken.IsCancellationRequested)
        {
            // Cancelled before it was queued (the callback found nothing to remove): it must not hold a place in the line.
            Cancel(generation);
        }

        return new Admission(new GenerationStream(output.Reader, generation.Completion), null);
    }

    public EngineStatus GetStatus()
    {
        lock (_gate)
        {
            return new EngineStatus
            {
                QueueDepth = _waiting.Count,
                QueueCapacity = _options.QueueCapacity,
                RunningSlots = _running,
                FreeSlots = _options.Slots - _running,
                TotalSlots = _options.Slots,
                ContextPerRequest = ContextPerRequest,
                PromptTokensTotal = _promptTokens,
                GeneratedTokensTotal = _generatedTokens,
                RequestsCompleted = _completed,
                RequestsCancelled = _cancelled,
                RequestsRejected = _rejected,
                Stopping = _closed,
            };
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _closed = true;
            SignalIdleIfDone();
        }

        using (cancellationToken.Register(Abort))
        {
            await _idle.Task;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // _abort is not disposed: it has no timer to release, and a late StopAsync may still cancel it.
        Abort();
        await StopAsync();
    }

    private static byte[] Piece(LlamaModel model, int token)
    {
        var buffer = new byte[64];
        var n = model.TokenToPiece(token, buffer, renderSpecial: false);
        if (n < 0)
        {
            buffer = new byte[-n];
            n = model.TokenToPiece(token, buffer, renderSpecial: false);
        }

        return buffer[..Math.Max(n, 0)];
    }

    /// <summary>A bad grammar is refused as by the real engine, which builds its sampler at submit.</summary>
    private Rejection? CheckGrammar(GenerationRequest request)
    {
        if (request.Grammar is null)
        {
            return null;
        }

        try
        {
            var s = request.Sampling;
            using var sampler = LlamaSampler.Create(_model, s.Temperature, s.TopP, s.TopK, s.MinP, s.RepetitionPenalty, s.PresencePenalty,
                s.FrequencyPenalty, s.PenaltyLastN, s.Seed, request.Grammar);
            return null;
        }
        catch (ArgumentException ex)
        {
            return new Rejection(RejectionReason.InvalidRequest, ex.Message);
        }
    }

    /// <summary>Takes a slot; under <see cref="_gate"/>.</summary>
    private void Admit(Generation generation)
    {
        _running++;
        _promptTokens += generation.Prompt.Length;
        generation.AdmittedAt = _time.GetTimestamp();
    }

    /// <summary>Produces the answer: inline without a token delay, else on timers.</summary>
    private void Run(Generation generation)
    {
        if (_reply.TokenDelay > TimeSpan.Zero)
        {
            _ = RunPacedAsync(generation);
            return;
        }

        // Whoever finishes a request runs the waiting one that got its slot: a loop, not a recursion.
        for (Generation? next = generation; next is not null;)
        {
            Begin(next);
            while (Step(next))
            {
            }

            next = Finish(next);
        }
    }

    private async Task RunPacedAsync(Generation generation)
    {
        Begin(generation);
        using (var wake = CancellationTokenSource.CreateLinkedTokenSource(generation.Cancellation, _abort.Token))
        {
            do
            {
                try
                {
                    await Task.Delay(_reply.TokenDelay, _time, wake.Token);
                }
                catch (OperationCanceledException)
                {
                    // Cancelled or aborted: Step tells which and ends the answer.
                }
            }
            while (Step(generation));
        }

        if (Finish(generation) is { } next)
        {
            Run(next);
        }
    }

    /// <summary>
    /// How the answer will go: <see cref="SimulatedReply.Tokens"/> tokens then a simulated end of generation
    /// (<c>stop</c>), unless max_tokens or the slot's context ends it first (<c>length</c>); with ignore_eos there
    /// is no end of generation, so max_tokens decides.
    /// </summary>
    private void Begin(Generation generation)
    {
        var request = generation.Request;
        var natural = request.IgnoreEndOfGeneration ? int.MaxValue : _reply.Tokens;
        // As in the real engine: the token sampled from the slot's last cell is still returned, never stored.
        var limit = Math.Min(request.MaxTokens, ContextPerRequest - generation.Prompt.Length + 1);
        generation.Length = Math.Min(natural, limit);
        generation.Reason = limit <= natural ? FinishReason.Length : FinishReason.Stop;
        generation.ClosesThinking = EndsWith(generation.Prompt, _thinkOpen);
    }

    /// <summary>Emits the next token; false when the answer is over (its <see cref="Generation.Reason"/> says why).</summary>
    /// <remarks>Never called on a finished answer: the first call emits (every answer has at least one token), the last returns false.</remarks>
    private bool Step(Generation generation)
    {
        if (generation.Cancellation.IsCancellationRequested)
        {
            generation.Reason = FinishReason.Cancelled;
            return false;
        }

        if (_abort.IsCancellationRequested)
        {
            generation.Reason = FinishReason.Interrupted;
            return false;
        }

        var i = generation.Generated;
        var close = generation.ClosesThinking ? _thinkClose.Length : 0;
        var token = i < close ? _thinkClose[i] : _cycle[(i - close) % _cycle.Length];
        if (i == 0)
        {
            generation.FirstTokenAt = _time.GetTimestamp();
        }

        generation.Generated++;
        generation.Output.Writer.TryWrite(new TokenEvent(token, generation.Text.Append(_pieces[token])));
        if (generation.Text.Stopped)
        {
            generation.Reason = FinishReason.Stop;
            return false;
        }

        return generation.Generated < generation.Length;
    }

    /// <summary>Frees the slot, gives it to the oldest waiting request (returned, to be run) and completes the stream.</summary>
    private Generation? Finish(Generation generation)
    {
        var reason = generation.Reason;
        var trailing = reason is FinishReason.Stop or FinishReason.Length ? generation.Text.Flush() : string.Empty;
        var now = _time.GetTimestamp();
        var usage = new GenerationUsage(
            generation.Prompt.Length,
            0,
            generation.Generated,
            _time.GetElapsedTime(generation.EnqueuedAt, generation.AdmittedAt),
            generation.FirstTokenAt == 0 ? TimeSpan.Zero : _time.GetElapsedTime(generation.EnqueuedAt, generation.FirstTokenAt),
            _time.GetElapsedTime(generation.EnqueuedAt, now));
        Generation? next = null;
        lock (_gate)
        {
            _running--;
            _generatedTokens += generation.Generated;
            if (reason == FinishReason.Cancelled)
            {
                _cancelled++;
            }
            else
            {
                _completed++;
            }
            next = _waiting.First?.Value;
            if (next is not null)
            {
                _waiting.RemoveFirst();
                next.Node = null;
                Admit(next);
            }

            SignalIdleIfDone();
        }

        // The slot is free before the caller sees the completion, as in the real engine.
        Complete(generation, new CompletionEvent(reason, usage, trailing, reason == FinishReason.Interrupted ? StoppedMessage : null));
        return next;
    }

    /// <summary>A caller cancelled: a waiting request ends now without work; a running one ends at its next token.</summary>
    private void Cancel(Generation generation)
    {
        lock (_gate)
        {
            if (generation.Node is null)
            {
                return;
            }

            _waiting.Remove(generation.Node);
            generation.Node = null;
            SignalIdleIfDone();
        }

        var elapsed = _time.GetElapsedTime(generation.EnqueuedAt);
        Complete(generation, new CompletionEvent(FinishReason.Cancelled, new GenerationUsage(generation.Prompt.Length, 0, 0, elapsed, TimeSpan.Zero, elapsed), string.Empty));
    }

    /// <summary>Ends everything now: running requests at their next token, waiting ones at once; all as interrupted.</summary>
    private void Abort()
    {
        _abort.Cancel();
        List<Generation> waiting;
        lock (_gate)
        {
            waiting = [.. _waiting];
            _waiting.Clear();
            foreach (var generation in waiting)
            {
                generation.Node = null;
            }

            SignalIdleIfDone();
        }

        foreach (var generation in waiting)
        {
            var elapsed = _time.GetElapsedTime(generation.EnqueuedAt);
            Complete(generation, new CompletionEvent(FinishReason.Interrupted, new GenerationUsage(generation.Prompt.Length, 0, 0, elapsed, TimeSpan.Zero, elapsed),
                string.Empty, StoppedMessage));
        }
    }

    /// <summary>Under <see cref="_gate"/>.</summary>
    private void SignalIdleIfDone()
    {
        if (_closed && _running == 0 && _waiting.Count == 0)
        {
            _idle.TrySetResult();
        }
    }

    private static void Complete(Generation generation, CompletionEvent completion)
    {
        generation.OnCancel.Dispose();
        generation.Output.Writer.TryWrite(completion);
        generation.Output.Writer.TryComplete();
        generation.Completion.TrySetResult(completion);
    }

    private static bool EndsWith(int[] prompt, int[] tail) =>
        tail.Length > 0 && prompt.Length >= tail.Length && prompt.AsSpan(prompt.Length - tail.Length).SequenceEqual(tail);

    /// <summary>One accepted request, from submit to its completion event.</summary>
    private sealed class Generation(GenerationRequest request, int[] prompt, Channel<GenerationEvent> output, CancellationToken cancellation, long enqueuedAt)
    {
        public GenerationRequest Request { get; } = request;

        public int[] Prompt { get; } = prompt;

        public Channel<GenerationEvent> Output { get; } = output;

        public CancellationToken Cancellation { get; } = cancellation;

        public TaskCompletionSource<CompletionEvent> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long EnqueuedAt { get; } = enqueuedAt;

        public long AdmittedAt { get; set; }

        public long FirstTokenAt { get; set; }

        public int Generated { get; set; }

        /// <summary>Its place in the wait line while it waits for a slot; null once admitted or ended.</summary>
        public LinkedListNode<Generation>? Node { get; set; }

        public CancellationTokenRegistration OnCancel { get; set; }

        // The answer as it is produced.
        public TextAssembler Text { get; } = new(request.StopSequences);

        /// <summary>The prompt left a &lt;think&gt; block open: the answer closes it first.</summary>
        public bool ClosesThinking { get; set; }

        /// <summary>Tokens this answer will have unless cancelled or stopped by a stop sequence.</summary>
        public int Length { get; set; }

        /// <summary>Why it ends when all <see cref="Length"/> tokens are out: a simulated end of generation, or a limit.</summary>
        public FinishReason Reason { get; set; }
    }
}
