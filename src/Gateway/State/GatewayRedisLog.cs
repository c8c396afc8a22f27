using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.State;

// Endpoints only: keys, values and the password never reach a log.
internal static partial class GatewayRedisLog
{
    [LoggerMessage(EventId = 500, EventName = "RedisConnected", Level = LogLevel.Information,
        Message = "Redis connected ({Endpoints}): affinity, limits and the worker registry are shared")]
    public static partial void Connected(ILogger logger, string endpoints);

    [LoggerMessage(EventId = 501, EventName = "RedisDisconnected", Level = LogLevel.Warning,
        Message = "Redis unavailable ({Endpoints}: {Reason}): serving from local state and reconnecting in the background")]
    public static partial void Disconnected(ILogger logger, string endpoints, string reason);

    [LoggerMessage(EventId = 502, EventName = "RedisConnectRefused", Level = LogLevel.Error,
        Message = "Redis ({Endpoints}) refused the configuration: serving from local state only")]
    public static partial void ConnectRefused(ILogger logger, string endpoints, Exception error);

    [LoggerMessage(EventId = 503, EventName = "RedisConnectedHandlerFailed", Level = LogLevel.Error,
        Message = "A Redis Connected handler threw")]
    public static partial void HandlerFailed(ILogger logger, Exception error);
}
