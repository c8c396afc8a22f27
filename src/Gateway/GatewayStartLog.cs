using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.DependencyInjection;

internal static partial class GatewayStartLog
{
    [LoggerMessage(EventId = 700, EventName = "RandomAffinityKeyWithRedis", Level = LogLevel.Warning,
        Message = "Gateway:Routing:AffinityKey is not set: prefix hashes use a random key of this process, so gateway replicas sharing this Redis do not share affinity; set the same key on every replica")]
    public static partial void RandomAffinityKeyWithRedis(ILogger logger);

    [LoggerMessage(EventId = 701, EventName = "RandomAffinityKey", Level = LogLevel.Information,
        Message = "Prefix hashes use a random key of this process (no Gateway:Routing:AffinityKey; fine for a single gateway)")]
    public static partial void RandomAffinityKey(ILogger logger);
}
