using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.Auth;

/// <summary>The API key and limit components' log events. Key names only: never a key, a hash or a header value.</summary>
internal static partial class AuthLog
{
    [LoggerMessage(EventId = 400, EventName = "GatewayOpen", Level = LogLevel.Warning,
        Message = "No API keys configured: the gateway is OPEN to anyone who can reach it. Set Gateway:KeysFile (--keys FILE) to require keys")]
    public static partial void GatewayOpen(ILogger logger);

    [LoggerMessage(EventId = 401, EventName = "KeysLoaded", Level = LogLevel.Information, Message = "Loaded {Count} API keys from {Path}")]
    public static partial void KeysLoaded(ILogger logger, int count, string path);

    [LoggerMessage(EventId = 402, EventName = "KeysReloaded", Level = LogLevel.Information,
        Message = "Reloaded API keys from {Path}: {Count} keys, {Added} added, {Removed} removed, {Changed} with new secrets or limits")]
    public static partial void KeysReloaded(ILogger logger, string path, int count, int added, int removed, int changed);

    [LoggerMessage(EventId = 403, EventName = "KeysFileInvalid", Level = LogLevel.Error,
        Message = "The API keys file {Path} cannot be used, so the last good set of {Count} keys stays in force until it is fixed: {Problems}")]
    public static partial void KeysFileInvalid(ILogger logger, string path, int count, string problems);

    [LoggerMessage(EventId = 404, EventName = "RequestUnauthenticated", Level = LogLevel.Debug,
        Message = "Refused {Method} {Path} with 401: {Reason}")]
    public static partial void RequestUnauthenticated(ILogger logger, string method, string path, string reason);

    [LoggerMessage(EventId = 410, EventName = "LimitsLocalOnly", Level = LogLevel.Information,
        Message = "No Redis configured: per-key limits are counted by each gateway replica on its own")]
    public static partial void LimitsLocalOnly(ILogger logger);

    [LoggerMessage(EventId = 411, EventName = "LimitsRedisUnavailable", Level = LogLevel.Warning,
        Message = "Redis is unavailable ({Reason}): per-key limits are counted by this replica on its own until it is back")]
    public static partial void LimitsRedisUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 412, EventName = "LimitsRedisRestored", Level = LogLevel.Information,
        Message = "Redis is back: per-key limits are shared by the gateway replicas again")]
    public static partial void LimitsRedisRestored(ILogger logger);
}
