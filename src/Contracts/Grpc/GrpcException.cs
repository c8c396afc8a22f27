namespace GpuFleet.Contracts.Grpc;

/// <summary>A call that ended with a non-OK gRPC status: thrown by the client, and by server handlers to choose the status.</summary>
public sealed class GrpcException : Exception
{
    /// <summary>Creates an exception carrying <paramref name="statusCode"/> and the status message sent as <c>grpc-message</c>.</summary>
    public GrpcException(GrpcStatusCode statusCode, string message)
        : base(message)
    {
        StatusCode = statusCode;
    }

    /// <summary>Creates an exception carrying a status and the exception that caused it (kept locally, never sent).</summary>
    public GrpcException(GrpcStatusCode statusCode, string message, Exception? innerException)
        : base(message, innerException)
    {
        StatusCode = statusCode;
    }

    /// <summary>The gRPC status code.</summary>
    public GrpcStatusCode StatusCode { get; }
}
