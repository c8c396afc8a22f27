using GpuFleet.Contracts.Redis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.State;

/// <summary>
/// The gateway's one Redis connection, shared by the affinity index, the key limits and the worker registry.
/// Redis is optional: with no <c>Redis:Endpoint</c> configured <see cref="Connection"/> is null and every user
/// keeps its state in process. When configured, the connection starts even while Redis is down and reconnects
/// with backoff; users check <see cref="Available"/> and fall back to local state, so an outage is never an
/// error for clients (the connection logs each change of state once).
/// </summary>
public sealed class GatewayRedis : IAsyncDisposable
{
    public GatewayRedis(IConfiguration configuration, ILoggerFactory loggerFactory, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(RedisOptions.SectionName);
        if (string.IsNullOrEmpty(section[nameof(RedisOptions.Endpoint)]))
        {
            return;
        }

        var options = section.Get<RedisOptions>() ?? new RedisOptions();
        Connection = RedisConnection.Connect(options, loggerFactory.CreateLogger<RedisConnection>(), time);
    }

    /// <summary>Null when no Redis is configured (in-process state only).</summary>
    public RedisConnection? Connection { get; }

    public bool Configured => Connection is not null;

    /// <summary>Configured and connected right now; when false, users serve from local state.</summary>
    public bool Available => Connection?.State == RedisConnectionState.Connected;

    /// <summary>Configured but not connected: the gateway runs degraded on local state.</summary>
    public bool Degraded => Connection is { State: not RedisConnectionState.Connected };

    public ValueTask DisposeAsync() => Connection?.DisposeAsync() ?? ValueTask.CompletedTask;
}
