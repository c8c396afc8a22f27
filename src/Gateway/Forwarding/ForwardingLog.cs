using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.Forwarding;

internal static partial class ForwardingLog
{
    [LoggerMessage(EventId = 600, EventName = "Retrying", Level = LogLevel.Information, Message = "Worker {Destination} failed before answering (attempt {Attempt}); retrying on another worker")]
    public static partial void Retrying(ILogger logger, string destination, int attempt);

    [LoggerMessage(EventId = 601, EventName = "RetryBudgetSpent", Level = LogLevel.Warning, Message = "Worker {Destination} answered unavailable and the retry budget is spent; not retrying")]
    public static partial void RetryBudgetSpent(ILogger logger, string destination);

    [LoggerMessage(EventId = 603, EventName = "Unreachable", Level = LogLevel.Warning, Message = "Worker {Destination} could not be reached (attempt {Attempt}) and no further worker may be tried")]
    public static partial void Unreachable(ILogger logger, string destination, int attempt);

    [LoggerMessage(EventId = 604, EventName = "ClientStalled", Level = LogLevel.Information, Message = "A client took nothing of the response from worker {Destination} for {Seconds} s; its connection was closed")]
    public static partial void ClientStalled(ILogger logger, string destination, double seconds);

    [LoggerMessage(EventId = 602, EventName = "StreamBroken", Level = LogLevel.Warning, Message = "A response from worker {Destination} broke after it started ({Reason}); ended with an error")]
    public static partial void StreamBroken(ILogger logger, string destination, string reason);
}
