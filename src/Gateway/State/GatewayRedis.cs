using GpuFleet.Contracts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace GpuFleet.Gateway.State;

/// <summary>
/// The gateway's one Redis connection (a StackExchange.Redis multiplexer), shared by the affinity index, the key limits
/// and the worker registry. Redis is optional: with no <c>Redis:Configuration</c> <see cref="Configured"/> is false and
/// every user keeps its state in process. When configured, the first connect runs in the background, so the gateway
/// starts at once even while Redis is down; the multiplexer then reconnects by itself, and commands issued while it is
/// disconnected fail at once (<see cref="BacklogPolicy.FailFast"/>). Users check <see cref="Available"/> and fall back
/// to local state, so an outage is never an error for clients. Each change of state is logged once, with the
/// endpoints only.
/// </summary>
internal sealed class GatewayRedis : IAsyncDisposable
{
    private const int Up = 1;
    private const int Down = 2;

    private readonly ILogger _logger;
    private readonly string _endpoints = "";
    private readonly Task<ConnectionMultiplexer?> _connecting = Task.FromResult<ConnectionMultiplexer?>(null);
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile ConnectionMultiplexer? _multiplexer;

    // As last logged (0 none yet, Up, Down): each change is logged once however many events the library raises.
    private int _state;

    public GatewayRedis(IConfiguration configuration, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _logger = loggerFactory.CreateLogger<GatewayRedis>();
        var text = configuration[RedisSettings.GatewayKey];
        if (string.IsNullOrWhiteSpace(text))
        {
            return;
        }

        var errors = new List<string>();
        var options = RedisSettings.Parse(text, RedisSettings.GatewayKey, errors)
            ?? throw new InvalidOperationException(string.Join(" ", errors));
        _endpoints = RedisSettings.Describe(options);
        Configured = true;
        _connecting = ConnectAsync(options);
    }

    public bool Configured { get; }

    /// <summary>Configured and connected right now; when false, users serve from local state.</summary>
    public bool Available => _multiplexer is { IsConnected: true };

    /// <summary>Configured but not connected: the gateway runs degraded on local state.</summary>
    public bool Degraded => Configured && !Available;

    /// <summary>The configured endpoints, for logs (never the password).</summary>
    public string Endpoints => _endpoints;

    /// <summary>The database while the first connect has finished (connected or not, it reconnects by itself); else null.</summary>
    public IDatabase? Database => _multiplexer?.GetDatabase();

    /// <summary>Raised (on a library thread; handlers must be quick) each time the connection comes up, the first time included.</summary>
    public event EventHandler? Connected;

    /// <summary>The multiplexer once the first connect attempt has ended (up to the connect timeout), or null when not configured.</summary>
    public Task<ConnectionMultiplexer?> WhenStartedAsync() => _connecting;

    public async ValueTask DisposeAsync()
    {
        var multiplexer = await _connecting;
        if (multiplexer is not null)
        {
            multiplexer.ConnectionFailed -= OnConnectionFailed;
            multiplexer.ConnectionRestored -= OnConnectionRestored;
            await multiplexer.DisposeAsync();
        }
    }

    private async Task<ConnectionMultiplexer?> ConnectAsync(ConfigurationOptions options)
    {
        // Not awaited by the constructor: with Redis down ConnectAsync waits the whole connect timeout before it returns
        // a disconnected multiplexer that keeps retrying. Until then Available is false and users serve locally.
        await Task.Yield();
        ConnectionMultiplexer multiplexer;
        try
        {
            multiplexer = await ConnectionMultiplexer.ConnectAsync(options);
        }
        catch (Exception ex) when (ex is RedisException or ArgumentException or InvalidOperationException)
        {
            // Only a configuration the library refuses outright ends here (abortConnect is forced off).
            GatewayRedisLog.ConnectRefused(_logger, _endpoints, ex);
            return null;
        }

        multiplexer.ConnectionFailed += OnConnectionFailed;
        multiplexer.ConnectionRestored += OnConnectionRestored;
        _multiplexer = multiplexer;
        if (multiplexer.IsConnected)
        {
            MarkUp();
        }
        else
        {
            MarkDown("connect timed out or was refused; retrying in the background");
        }

        return multiplexer;
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (_multiplexer is { IsConnected: false })
        {
            MarkDown(e.FailureType.ToString());
        }
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (_multiplexer is { IsConnected: true })
        {
            MarkUp();
        }
    }

    private void MarkUp()
    {
        if (Interlocked.Exchange(ref _state, Up) != Up)
        {
            GatewayRedisLog.Connected(_logger, _endpoints);
            try
            {
                Connected?.Invoke(this, EventArgs.Empty);
            }
            catch (Exception ex)
            {
                // A subscriber's bug must not break the library's event loop.
                GatewayRedisLog.HandlerFailed(_logger, ex);
            }
        }
    }

    private void MarkDown(string reason)
    {
        if (Interlocked.Exchange(ref _state, Down) != Down)
        {
            GatewayRedisLog.Disconnected(_logger, _endpoints, reason);
        }
    }
}
