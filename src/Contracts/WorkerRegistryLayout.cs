namespace GpuFleet.Contracts;

/// <summary>
/// The worker registry's layout in Redis: written by the worker's heartbeat (src/Worker/Hosting/RegistryHeartbeat.cs),
/// read by the gateway (src/Gateway/Destinations/RedisWorkerRegistry.cs); described in docs/gateway.md. No Redis client code here: each
/// executable talks to Redis through StackExchange.Redis.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>gpufleet:{workers}</c>: a sorted set, one member per worker (its advertised HTTP URL), scored by its last
/// heartbeat in Redis server time (unix ms), so no worker's or gateway's clock matters.</item>
/// <item><c>gpufleet:{workers}:&lt;http-url&gt;</c>: a hash per worker with <c>http_url</c>, <c>grpc_url</c>,
/// <c>name</c>, <c>model</c>, <c>ready</c>, <c>draining</c> (1/0) and <c>heartbeat_ms</c>, expiring after
/// <see cref="EntryTtl"/> so a dead worker's entry goes even when no gateway runs.</item>
/// </list>
/// The <c>{workers}</c> hash tag puts every key in one Redis Cluster slot, so the scripts may touch them together.
/// </remarks>
public static class WorkerRegistryLayout
{
    public const string WorkersKey = "gpufleet:{workers}";

    /// <summary>Prefix of a worker's hash; the member (its HTTP URL) follows.</summary>
    public const string EntryKeyPrefix = "gpufleet:{workers}:";

    /// <summary>Workers beat every 2 s; an entry not renewed for this long (5 beats) is ignored and pruned.</summary>
    public static readonly TimeSpan EntryTtl = TimeSpan.FromSeconds(10);

    /// <summary>How often a worker beats and a gateway reads the registry.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
}
