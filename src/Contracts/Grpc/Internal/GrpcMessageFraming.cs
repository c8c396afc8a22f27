using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Google.Protobuf;

namespace GpuFleet.Contracts.Grpc.Internal;

/// <summary>The length-prefixed message framing of gRPC, over a pipe (server, Kestrel) or a stream (client, HttpClient).</summary>
internal static class GrpcMessageFraming
{
    /// <summary>Checks a message's size against a send limit; RESOURCE_EXHAUSTED when over.</summary>
    public static int CheckedSize(IMessage message, int? maxSendMessageSize)
    {
        var size = message.CalculateSize();
        if (maxSendMessageSize is { } max && size > max)
        {
            throw new GrpcException(
                GrpcStatusCode.ResourceExhausted,
                $"Sending message exceeds the maximum configured message size ({size} > {max} bytes).");
        }

        return size;
    }

    /// <summary>Writes one message with its prefix and flushes it, so a streamed message reaches the client at once.</summary>
    public static async ValueTask WriteAsync(PipeWriter writer, IMessage message, int? maxSendMessageSize, CancellationToken cancellationToken)
    {
        var size = CheckedSize(message, maxSendMessageSize);
        WritePrefix(writer.GetSpan(GrpcProtocol.MessagePrefixSize), size);
        writer.Advance(GrpcProtocol.MessagePrefixSize);
        message.WriteTo(writer);
        var result = await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCanceled)
        {
            throw new OperationCanceledException(cancellationToken);
        }
    }

    /// <summary>Serializes one message with its prefix into a new array (the client sends it as the request body).</summary>
    public static byte[] ToFramedArray(IMessage message, int? maxSendMessageSize)
    {
        var size = CheckedSize(message, maxSendMessageSize);
        var buffer = new byte[GrpcProtocol.MessagePrefixSize + size];
        WritePrefix(buffer, size);
        message.WriteTo(buffer.AsSpan(GrpcProtocol.MessagePrefixSize));
        return buffer;
    }

    /// <summary>
    /// Reads the single request message of a unary or server-streaming call and then the end of the request;
    /// a missing message, a second one or trailing bytes are protocol errors (INTERNAL).
    /// </summary>
    public static async ValueTask<T> ReadSingleMessageAsync<T>(
        PipeReader reader, MessageParser<T> parser, int maxReceiveMessageSize, CancellationToken cancellationToken)
        where T : IMessage<T>
    {
        var result = await reader.ReadAtLeastAsync(GrpcProtocol.MessagePrefixSize, cancellationToken).ConfigureAwait(false);
        var buffer = result.Buffer;
        if (buffer.Length < GrpcProtocol.MessagePrefixSize)
        {
            reader.AdvanceTo(buffer.Start, buffer.End);
            throw new GrpcException(
                GrpcStatusCode.Internal,
                buffer.IsEmpty ? "Request did not contain a message." : "Request ended inside a message prefix.");
        }

        var length = ReadPrefix(buffer.Slice(0, GrpcProtocol.MessagePrefixSize), maxReceiveMessageSize);
        reader.AdvanceTo(buffer.Start, buffer.End);

        // The limit was checked before waiting for the payload, so an oversized message is never buffered.
        var total = GrpcProtocol.MessagePrefixSize + length;
        result = await reader.ReadAtLeastAsync(total, cancellationToken).ConfigureAwait(false);
        buffer = result.Buffer;
        if (buffer.Length < total)
        {
            reader.AdvanceTo(buffer.Start, buffer.End);
            throw new GrpcException(GrpcStatusCode.Internal, "Request ended inside a message.");
        }

        T message;
        try
        {
            message = parser.ParseFrom(buffer.Slice(GrpcProtocol.MessagePrefixSize, length));
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new GrpcException(GrpcStatusCode.Internal, "Failed to deserialize the request message.", ex);
        }
        finally
        {
            reader.AdvanceTo(buffer.GetPosition(total));
        }

        while (true)
        {
            result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var rest = result.Buffer;
            reader.AdvanceTo(rest.End);
            if (!rest.IsEmpty)
            {
                throw new GrpcException(GrpcStatusCode.Internal, "Request contained more than one message for a method that takes one.");
            }

            if (result.IsCompleted)
            {
                return message;
            }
        }
    }

    /// <summary>
    /// Reads the next message from a response stream; null at a clean end of stream (between messages).
    /// </summary>
    public static async ValueTask<T?> ReadMessageAsync<T>(
        Stream stream, MessageParser<T> parser, int maxReceiveMessageSize, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        var prefix = new byte[GrpcProtocol.MessagePrefixSize];
        var read = await stream.ReadAtLeastAsync(prefix, prefix.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            return null;
        }

        if (read < prefix.Length)
        {
            throw new GrpcException(GrpcStatusCode.Internal, "Response ended inside a message prefix.");
        }

        var length = ReadPrefix(new ReadOnlySequence<byte>(prefix), maxReceiveMessageSize);
        var payload = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            read = await stream.ReadAtLeastAsync(payload.AsMemory(0, length), length, throwOnEndOfStream: false, cancellationToken)
                .ConfigureAwait(false);
            if (read < length)
            {
                throw new GrpcException(GrpcStatusCode.Internal, "Response ended inside a message.");
            }

            try
            {
                return parser.ParseFrom(payload.AsSpan(0, length));
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new GrpcException(GrpcStatusCode.Internal, "Failed to deserialize the response message.", ex);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload);
        }
    }

    private static void WritePrefix(Span<byte> destination, int length)
    {
        destination[0] = 0; // Never compressed: we only speak the identity encoding.
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)length);
    }

    /// <summary>Validates a prefix: compressed messages are refused (we advertise identity only), and the length must fit the limit.</summary>
    private static int ReadPrefix(ReadOnlySequence<byte> prefix, int maxMessageSize)
    {
        Span<byte> bytes = stackalloc byte[GrpcProtocol.MessagePrefixSize];
        prefix.CopyTo(bytes);
        switch (bytes[0])
        {
            case 0:
                break;
            case 1:
                // A compressed flag without a negotiated grpc-encoding is a protocol violation (PROTOCOL-HTTP2.md).
                throw new GrpcException(GrpcStatusCode.Internal, "Compressed message received, but no message encoding other than identity is supported.");
            default:
                throw new GrpcException(GrpcStatusCode.Internal, "Invalid compressed flag in a message prefix.");
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(bytes[1..]);
        if (length > (uint)maxMessageSize)
        {
            throw new GrpcException(
                GrpcStatusCode.ResourceExhausted,
                $"Received message exceeds the maximum configured message size ({length} > {maxMessageSize} bytes).");
        }

        return (int)length;
    }
}
