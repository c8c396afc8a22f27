using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine;

/// <summary>Engine log messages: counts and reasons only, never prompt or completion text.</summary>
internal static partial class EngineLog
{
    [LoggerMessage(EventId = 2000, EventName = "EngineStarted", Level = LogLevel.Information,
        Message = "Engine started: {Slots} slots sharing {ContextSize} tokens of KV ({ContextPerRequest} per request), batch {BatchSize}, {Architecture} ({Mode} prefix reuse), state {FixedBytes} B/sequence + {BytesPerToken} B/token")]
    public static partial void EngineStarted(ILogger logger, int slots, int contextSize, int contextPerRequest, int batchSize, string architecture, string mode, long fixedBytes, long bytesPerToken);

    [LoggerMessage(EventId = 2005, EventName = "ContextSized", Level = LogLevel.Information,
        Message = "Context sized automatically: {Tokens} tokens (model trained for {TrainingTokens}), {KvBytes} B of KV within a budget of {BudgetBytes} B; set Engine:ContextSize (--ctx-size) to choose")]
    public static partial void ContextSized(ILogger logger, int tokens, int trainingTokens, long kvBytes, long budgetBytes);

    [LoggerMessage(EventId = 2006, EventName = "ContextFull", Level = LogLevel.Warning,
        Message = "The shared KV pool is full: ended a request at {Tokens} tokens (finish_reason length)")]
    public static partial void ContextFull(ILogger logger, int tokens);

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
