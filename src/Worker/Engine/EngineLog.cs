using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine;

/// <summary>Engine log messages: counts and reasons only, never prompt or completion text.</summary>
internal static partial class EngineLog
{
    [LoggerMessage(EventId = 2000, EventName = "EngineStarted", Level = LogLevel.Information,
        Message = "Engine started: {Slots} slots x {ContextPerSlot} tokens, batch {BatchSize}, {Architecture} ({Mode} prefix reuse), state {FixedBytes} B/sequence + {BytesPerToken} B/token")]
    public static partial void EngineStarted(ILogger logger, int slots, int contextPerSlot, int batchSize, string architecture, string mode, long fixedBytes, long bytesPerToken);

    [LoggerMessage(EventId = 2001, EventName = "DecodeFailed", Level = LogLevel.Error,
        Message = "llama_decode failed with {Result}; failing the {Requests} request(s) of this batch")]
    public static partial void DecodeFailed(ILogger logger, LlamaCpp.DecodeResult result, int requests);

    [LoggerMessage(EventId = 2002, EventName = "SchedulerError", Level = LogLevel.Error,
        Message = "Scheduler step failed; failing the {Requests} running request(s)")]
    public static partial void SchedulerError(ILogger logger, Exception exception, int requests);

    [LoggerMessage(EventId = 2003, EventName = "SnapshotRestoreFailed", Level = LogLevel.Warning,
        Message = "Restoring a {Tokens}-token prefix snapshot into sequence {Sequence} failed; prefilling from scratch")]
    public static partial void SnapshotRestoreFailed(ILogger logger, int tokens, int sequence);

    [LoggerMessage(EventId = 2004, EventName = "EngineStopped", Level = LogLevel.Information,
        Message = "Engine stopped ({Completed} requests completed, {Aborted} aborted at shutdown)")]
    public static partial void EngineStopped(ILogger logger, long completed, int aborted);
}
