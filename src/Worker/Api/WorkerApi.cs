using GpuFleet.Contracts;
using GpuFleet.Worker.Api.OpenAi;
using GpuFleet.Worker.Chat;
using GpuFleet.Worker.Engine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace GpuFleet.Worker.Api;

/// <summary>What the worker's endpoints share: the engine, the settings, the drain state and the clock.</summary>
internal sealed class WorkerApi(EngineHost host, IOptions<WorkerOptions> options, WorkerLifecycle lifecycle, TimeProvider time, ILogger<WorkerApi> logger)
{
    private SpecialTokenGuard? _specialTokens;
    private int? _messageStartToken;

    public IInferenceEngine Engine => host.Engine;

    /// <summary>Keeps request text from becoming special tokens (built on first use: the model loads at start).</summary>
    internal SpecialTokenGuard SpecialTokens => _specialTokens ??= new SpecialTokenGuard(host.Engine.Model);

    /// <summary>The token that starts every chat message (<c>&lt;|im_start|&gt;</c>), or -1 when the vocabulary has none; looked up once.</summary>
    internal int MessageStartToken => _messageStartToken ??= host.Engine.Model.Tokenize("<|im_start|>") is [var token] ? token : -1;

    public WorkerOptions Options => options.Value;

    public WorkerLifecycle Lifecycle => lifecycle;

    public TimeProvider Time => time;

    internal ILogger Logger => logger;

    public string ModelId => Options.EffectiveModelId;

    /// <summary>A simulated engine answers (<c>--simulate</c> or <c>--simulate-profile</c>): every surface says so.</summary>
    public bool Simulated => Options.IsSimulated;

    /// <summary>The engine status, or null while the model loads.</summary>
    internal EngineStatus? TryGetStatus() => host.Ready ? host.Engine.GetStatus() : null;

    /// <summary>503 while the model is not loaded or the worker drains: new work belongs elsewhere.</summary>
    internal void EnsureServing()
    {
        if (lifecycle.Draining)
        {
            throw new OpenAiException(503, "This worker is shutting down; send the request to another worker.", "service_unavailable", null, "draining")
            {
                RetryAfterSeconds = 1,
            };
        }

        if (!host.Ready)
        {
            throw new OpenAiException(503, "The model is still loading.", "service_unavailable", null, "loading") { RetryAfterSeconds = 5 };
        }
    }

    internal void EnsureModel(string model)
    {
        if (!string.Equals(model, ModelId, StringComparison.Ordinal))
        {
            throw new OpenAiException(404, $"The model '{JsonRequestBody.Quote(model)}' does not exist on this worker; it serves '{ModelId}'.", "invalid_request_error", "model", "model_not_found");
        }
    }

    /// <summary>Builds the engine request; without max_tokens the rest of the slot's context is the limit.</summary>
    internal GenerationRequest BuildRequest(int[] prompt, GenerationParameters parameters, string? grammar) => new()
    {
        PromptTokens = prompt,
        MaxTokens = parameters.MaxTokens ?? Math.Max(1, Engine.ContextPerRequest - prompt.Length),
        Sampling = parameters.Sampling,
        StopSequences = parameters.Stop,
        Grammar = grammar,
        IgnoreEndOfGeneration = parameters.IgnoreEos,
    };

    /// <summary>Maps an engine refusal to the API's status: 400, 429 with Retry-After, or 503.</summary>
    internal OpenAiException ToError(Rejection rejection)
    {
        var status = Engine.GetStatus();
        return rejection.Reason switch
        {
            RejectionReason.PromptTooLong => new OpenAiException(400, rejection.Message, "invalid_request_error", "messages", "context_length_exceeded"),
            RejectionReason.Overloaded => new OpenAiException(429, rejection.Message, "rate_limit_exceeded", null, "worker_overloaded")
            {
                RetryAfterSeconds = EstimateRetryAfter(status),
            },
            RejectionReason.ShuttingDown => new OpenAiException(503, rejection.Message, "service_unavailable", null, "draining") { RetryAfterSeconds = 1 },
            _ => new OpenAiException(400, rejection.Message, "invalid_request_error", null, "invalid_value"),
        };
    }

    /// <summary>
    /// Seconds until a slot is likely free: the waiting work spread over the slots, at the recent
    /// completion pace (recent decode rate and an average reply length), clamped to 1..60.
    /// </summary>
    private static int EstimateRetryAfter(EngineStatus status)
    {
        var perSlotTokensPerSecond = status.DecodeTokensPerSecond / Math.Max(1, status.RunningSlots);
        var averageReply = status.RequestsCompleted > 0 ? (double)status.GeneratedTokensTotal / status.RequestsCompleted : 256;
        var secondsPerRequest = perSlotTokensPerSecond > 0 ? averageReply / perSlotTokensPerSecond : 5;
        var waves = Math.Ceiling((status.QueueDepth + 1.0) / Math.Max(1, status.TotalSlots));
        return RetryAfter.Seconds(waves * secondsPerRequest, max: 60);
    }
}
