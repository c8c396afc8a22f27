using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Engine;

/// <summary>A request waiting for a slot.</summary>
internal sealed class PendingRequest
{
    public required GenerationRequest Request { get; init; }

    public required int[] Prompt { get; init; }

    public required CancellationToken Cancellation { get; init; }

    public required System.Threading.Channels.Channel<GenerationEvent> Output { get; init; }

    public required TaskCompletionSource<CompletionEvent> Completion { get; init; }

    public required long EnqueuedAt { get; init; }

    /// <summary>Made on the submitting thread, so a bad grammar is refused at once; used by the scheduler only.</summary>
    public required LlamaSampler Sampler { get; init; }

    public CancellationTokenRegistration WakeOnCancel { get; set; }
}
