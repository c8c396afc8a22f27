using Microsoft.Extensions.Logging;

namespace GpuFleet.Contracts.Redis;

// Endpoints and command names only: keys, values and the password never reach a log.
internal static partial class RedisLog
{
    [LoggerMessage(EventId = 1, EventName = "RedisConnected", Level = LogLevel.Information,
        Message = "Redis connected to {Endpoint}.")]
    public static partial void Connected(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 2, EventName = "RedisConnectFailed", Level = LogLevel.Warning,
        Message = "Redis connect to {Endpoint} failed (attempt {Attempt}); retrying in {DelayMs} ms.")]
    public static partial void ConnectFailed(ILogger logger, string endpoint, int attempt, long delayMs, Exception error);

    // Later failures of the same outage at Debug: one warning per outage, not one per retry.
    [LoggerMessage(EventId = 5, EventName = "RedisReconnectFailed", Level = LogLevel.Debug,
        Message = "Redis connect to {Endpoint} failed again (attempt {Attempt}); retrying in {DelayMs} ms.")]
    public static partial void ReconnectFailed(ILogger logger, string endpoint, int attempt, long delayMs, Exception error);

    [LoggerMessage(EventId = 3, EventName = "RedisConnectionLost", Level = LogLevel.Warning,
        Message = "Redis connection to {Endpoint} lost; {Pending} pending commands failed.")]
    public static partial void ConnectionLost(ILogger logger, string endpoint, int pending, Exception? error);

    [LoggerMessage(EventId = 4, EventName = "RedisStateHandlerFailed", Level = LogLevel.Error,
        Message = "A Redis StateChanged handler threw.")]
    public static partial void StateHandlerFailed(ILogger logger, Exception error);
}
