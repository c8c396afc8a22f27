using Google.Protobuf;

namespace GpuFleet.Contracts.Grpc;

/// <summary>Writes the messages of a server-streaming call; one write at a time, each flushed to the client.</summary>
/// <typeparam name="T">The response message type.</typeparam>
public interface IGrpcStreamWriter<in T>
    where T : IMessage<T>
{
    /// <summary>
    /// Writes one message and flushes it. Throws <see cref="InvalidOperationException"/> while another write is in
    /// progress or after the call completed, <see cref="OperationCanceledException"/> once the call is cancelled or
    /// past its deadline, and <see cref="GrpcException"/> (RESOURCE_EXHAUSTED) for a message over the send limit.
    /// </summary>
    Task WriteAsync(T message, CancellationToken cancellationToken = default);
}
