using Microsoft.Extensions.Logging;

namespace GpuFleet.Contracts.Grpc.Internal;

/// <summary>Log events of the gRPC server endpoints; method names and status codes only, never message contents.</summary>
internal static partial class GrpcServerLog
{
    [LoggerMessage(EventId = 1, EventName = "GrpcHandlerFailed", Level = LogLevel.Error,
        Message = "The gRPC handler for {Method} threw; the call ends with INTERNAL")]
    public static partial void HandlerFailed(ILogger logger, string method, Exception exception);

    // A client going away is normal operation (grpc-dotnet logs it at Information too).
    [LoggerMessage(EventId = 2, EventName = "GrpcCallCancelled", Level = LogLevel.Information,
        Message = "gRPC call {Method} was cancelled by the client")]
    public static partial void CallCancelled(ILogger logger, string method);

    [LoggerMessage(EventId = 3, EventName = "GrpcDeadlineExceeded", Level = LogLevel.Information,
        Message = "gRPC call {Method} exceeded its deadline ({Timeout})")]
    public static partial void DeadlineExceeded(ILogger logger, string method, TimeSpan timeout);

    [LoggerMessage(EventId = 4, EventName = "GrpcCallFailed", Level = LogLevel.Debug,
        Message = "gRPC call {Method} ended with status {StatusCode}")]
    public static partial void CallFailed(ILogger logger, string method, GrpcStatusCode statusCode);

    [LoggerMessage(EventId = 5, EventName = "GrpcRequestRefused", Level = LogLevel.Debug,
        Message = "Refused a gRPC request to {Method}: {Reason}")]
    public static partial void RequestRefused(ILogger logger, string method, string reason);

    [LoggerMessage(EventId = 6, EventName = "GrpcMethodUnimplemented", Level = LogLevel.Debug,
        Message = "gRPC method {Method} is not implemented here")]
    public static partial void MethodUnimplemented(ILogger logger, string method);

    [LoggerMessage(EventId = 7, EventName = "GrpcStatusNotSent", Level = LogLevel.Debug,
        Message = "Could not send the status of gRPC call {Method}; the connection is gone")]
    public static partial void StatusNotSent(ILogger logger, string method, Exception exception);
}
