using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Engine;

/// <summary>
/// What the worker's APIs need from an engine: submit a tokenized request, read the status, stop; and the
/// model's vocabulary (tokenizer, special tokens) and the engine settings the requests are checked against.
/// Built-ins: <see cref="InferenceEngine"/> (llama.cpp) and <see cref="Simulated.SimulatedEngine"/> (no model cost).
/// </summary>
internal interface IInferenceEngine : IAsyncDisposable
{
    /// <summary>The served model: vocabulary and metadata (a simulated engine loads the vocabulary only).</summary>
    LlamaModel Model { get; }

    EngineOptions Options { get; }

    /// <summary>The most tokens (prompt and completion) one request can hold, known once the engine has started.</summary>
    int ContextPerRequest { get; }

    /// <summary>
    /// Validates and queues a request. Never blocks: an invalid, too long or over-capacity request is
    /// refused at once with a reason. Cancelling <paramref name="cancellationToken"/> ends the generation
    /// and frees its slot.
    /// </summary>
    Admission Submit(GenerationRequest request, CancellationToken cancellationToken = default);

    /// <summary>The current status: slots, queue, memory, throughput and totals.</summary>
    EngineStatus GetStatus();

    /// <summary>
    /// Stops accepting requests and lets accepted ones finish; when <paramref name="cancellationToken"/>
    /// fires first, the rest end as interrupted.
    /// </summary>
    Task StopAsync(CancellationToken cancellationToken = default);
}
