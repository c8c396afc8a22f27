using System.Threading.Channels;
using GpuFleet.Worker.Engine.Compute;
using GpuFleet.Worker.Engine.Scheduling;
using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GpuFleet.Worker.Engine;

/// <summary>
/// One model, one llama.cpp context with <see cref="EngineOptions.Slots"/> sequence slots, served by one
/// scheduler thread with continuous batching and prefix-cache reuse. Thread-safe: any thread may submit.
/// </summary>
internal sealed class InferenceEngine : IInferenceEngine
{
    private readonly LlamaModel _model;
    private readonly EngineOptions _options;
    private readonly TimeProvider _time;
    private readonly AdmissionQueue _queue;
    private readonly Scheduler _scheduler;
    private readonly Thread _thread;
    private long _rejected;

    private InferenceEngine(LlamaModel model, IComputeBackend backend, EngineOptions options, ILogger logger, TimeProvider time)
    {
        _model = model;
        _options = options;
        _time = time;
        _queue = new AdmissionQueue(options.Slots, options.QueueCapacity);
        _scheduler = new Scheduler(model, backend, options, _queue, time, logger);
        _thread = new Thread(_scheduler.Run) { IsBackground = true, Name = "llama-scheduler" };
    }

    public LlamaModel Model => _model;

    public EngineOptions Options => _options;

    public int ContextPerRequest => _scheduler.ContextPerRequest;

    /// <summary>Test hook: make the next decode steps fail while it returns true.</summary>
    internal Func<bool>? InjectDecodeFailure
    {
        get => _scheduler.InjectDecodeFailure;
        set => _scheduler.InjectDecodeFailure = value;
    }

    /// <summary>Creates the context on the scheduler thread, warms it up and starts serving.</summary>
    public static Task<InferenceEngine> StartAsync(LlamaModel model, EngineOptions options, ILogger? logger = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return StartAsync(model, new LlamaComputeBackend(model), options, logger, time);
    }

    /// <summary>
    /// Starts the same engine over another compute backend (a cost model: <see cref="CostModel.CostModelBackend"/>);
    /// <paramref name="model"/> supplies the vocabulary and may be loaded vocabulary-only when the backend reads no weights.
    /// </summary>
    internal static async Task<InferenceEngine> StartAsync(LlamaModel model, IComputeBackend backend, EngineOptions options, ILogger? logger = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        var engine = new InferenceEngine(model, backend, options, logger ?? NullLogger.Instance, time ?? TimeProvider.System);
        engine._thread.Start();
        await engine._scheduler.Started;
        return engine;
    }

    /// <summary>
    /// Validates and queues a request. Never blocks: an invalid, too long or over-capacity request is
    /// refused at once with a reason. Cancelling <paramref name="cancellationToken"/> ends the generation
    /// and frees its slot within one decode step.
    /// </summary>
    public Admission Submit(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var rejection = RequestValidation.Validate(request, _model.VocabularySize, ContextPerRequest);
        if (rejection is not null)
        {
            Interlocked.Increment(ref _rejected);
            return new Admission(null, rejection);
        }

        LlamaSampler sampler;
        try
        {
            var sampling = request.Sampling;
            sampler = LlamaSampler.Create(_model, sampling.Temperature, sampling.TopP, sampling.TopK, sampling.MinP,
                sampling.RepetitionPenalty, sampling.PresencePenalty, sampling.FrequencyPenalty, sampling.PenaltyLastN, sampling.Seed, request.Grammar);
        }
        catch (ArgumentException ex)
        {
            Interlocked.Increment(ref _rejected);
            return new Admission(null, new Rejection(RejectionReason.InvalidRequest, ex.Message));
        }

        // Unbounded on purpose: the scheduler must never block on a slow reader. What a request may hold unread is
        // bounded by the scheduler instead, which stops decoding it at Scheduler.UnreadTokenLimit unread events; that
        // needs the reader's Count, which only the multi-reader channel keeps (one reader still reads it).
        var output = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });
        var completion = new TaskCompletionSource<CompletionEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pending = new PendingRequest
        {
            Request = request,
            Prompt = [.. request.PromptTokens],
            Cancellation = cancellationToken,
            Output = output,
            Completion = completion,
            EnqueuedAt = _time.GetTimestamp(),
            Sampler = sampler,
        };
        pending.WakeOnCancel = cancellationToken.Register(static q => ((AdmissionQueue)q!).Wake(), _queue);
        if (!_queue.TryEnqueue(pending, out var reason))
        {
            pending.WakeOnCancel.Dispose();
            sampler.Dispose();
            Interlocked.Increment(ref _rejected);
            return new Admission(null, RequestValidation.Refusal(reason, _options));
        }

        return new Admission(new GenerationStream(output.Reader, completion), null);
    }

    /// <summary>The current status: slots, queue, memory, host cache, throughput and totals.</summary>
    public EngineStatus GetStatus() => _scheduler.ReadStatus(Interlocked.Read(ref _rejected));

    /// <summary>
    /// Stops accepting requests and lets accepted ones finish; when <paramref name="cancellationToken"/>
    /// fires first, the rest are cancelled. Returns when the scheduler thread has released the context.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        _queue.Close();
        using (cancellationToken.Register(_scheduler.Abort))
        {
            await _scheduler.Stopped;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _scheduler.Abort();
        await StopAsync();
        _queue.Dispose();
    }
}
