using GpuFleet.Contracts;
using GpuFleet.Gateway.State;
using GpuFleet.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace GpuFleet.Gateway.Tests.State;

/// <summary>The gateway's Redis connection as tests make it, and a plain admin connection for looking into the server.</summary>
internal static class RedisTestConnections
{
    /// <summary>A <see cref="GatewayRedis"/> for a configuration string (null: no Redis configured), as the gateway builds it.</summary>
    public static GatewayRedis Gateway(string? configuration, ILoggerFactory? loggerFactory = null)
    {
        var settings = new Dictionary<string, string?>();
        if (configuration is not null)
        {
            settings[RedisSettings.GatewayKey] = configuration;
        }

        return new GatewayRedis(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(), loggerFactory ?? NullLoggerFactory.Instance);
    }

    /// <summary>A <see cref="GatewayRedis"/> that has connected.</summary>
    public static async Task<GatewayRedis> ConnectedAsync(string configuration)
    {
        var redis = Gateway(configuration);
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redis.Available), () => $"Redis at {redis.Endpoints} never connected");
        return redis;
    }

    /// <summary>
    /// A connection of its own with admin commands (KEYS, DEBUG, CLIENT, FLUSHALL) allowed and the given command
    /// timeout, for setting up and inspecting the server beside the connection under test.
    /// </summary>
    public static async Task<ConnectionMultiplexer> AdminAsync(string endpoint, TimeSpan? commandTimeout = null)
    {
        var options = ConfigurationOptions.Parse(endpoint);
        options.AllowAdmin = true;
        options.AbortOnConnectFail = false;
        options.AsyncTimeout = options.SyncTimeout = (int)(commandTimeout ?? TimeSpan.FromSeconds(10)).TotalMilliseconds;
        var admin = await ConnectionMultiplexer.ConnectAsync(options);
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(admin.IsConnected), () => $"admin connection to {endpoint} never connected");
        return admin;
    }

    /// <summary>Runs one command on the admin connection's database 0.</summary>
    public static Task<RedisResult> RunAsync(this ConnectionMultiplexer admin, string command, params object[] args) =>
        admin.GetDatabase().ExecuteAsync(command, args);
}
