using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace GpuFleet.Worker.Engine;

/// <summary>
/// The output of one accepted request. Events arrive in order and always end with exactly one
/// <see cref="CompletionEvent"/>. Cancelling the token given to Submit (or passed here) frees the slot.
/// </summary>
internal sealed class GenerationStream
{
    private readonly ChannelReader<GenerationEvent> _reader;
    private readonly TaskCompletionSource<CompletionEvent> _completion;

    internal GenerationStream(ChannelReader<GenerationEvent> reader, TaskCompletionSource<CompletionEvent> completion)
    {
        _reader = reader;
        _completion = completion;
    }

    /// <summary>Completes with the final event (also after cancellation).</summary>
    public Task<CompletionEvent> Completion => _completion.Task;

    public async IAsyncEnumerable<GenerationEvent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var item in _reader.ReadAllAsync(cancellationToken))
        {
            yield return item;
        }
    }
}
