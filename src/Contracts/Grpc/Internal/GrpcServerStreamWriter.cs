using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Contracts.Grpc.Internal;

/// <summary>The response stream of one server-streaming call on Kestrel.</summary>
internal sealed class GrpcServerStreamWriter<T> : IGrpcStreamWriter<T>
    where T : IMessage<T>
{
    private readonly HttpResponse _response;
    private readonly int? _maxSendMessageSize;
    private readonly CancellationToken _callToken;
    private int _writing;
    private volatile bool _completed;

    public GrpcServerStreamWriter(HttpResponse response, int? maxSendMessageSize, CancellationToken callToken)
    {
        _response = response;
        _maxSendMessageSize = maxSendMessageSize;
        _callToken = callToken;
    }

    public async Task WriteAsync(T message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);

        // Two writes at once would interleave their frames on the wire; refuse instead of corrupting the stream.
        if (Interlocked.CompareExchange(ref _writing, 1, 0) != 0)
        {
            throw new InvalidOperationException("Cannot write a message while the previous write is still in progress.");
        }

        try
        {
            if (_completed)
            {
                throw new InvalidOperationException("Cannot write a message after the call completed.");
            }

            _callToken.ThrowIfCancellationRequested();
            if (!cancellationToken.CanBeCanceled)
            {
                await GrpcMessageFraming.WriteAsync(_response.BodyWriter, message, _maxSendMessageSize, _callToken).ConfigureAwait(false);
                return;
            }

            using var linked = CancellationTokenSource.CreateLinkedTokenSource(_callToken, cancellationToken);
            await GrpcMessageFraming.WriteAsync(_response.BodyWriter, message, _maxSendMessageSize, linked.Token).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _writing, 0);
        }
    }

    /// <summary>Called when the handler returned: a write started later (a task the handler forgot) must not touch the finished response.</summary>
    public void Complete() => _completed = true;
}
