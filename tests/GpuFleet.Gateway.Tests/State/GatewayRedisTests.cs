using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using GpuFleet.Contracts;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.State;
using GpuFleet.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace GpuFleet.Gateway.Tests.State;

/// <summary>
/// The gateway's one Redis connection (StackExchange.Redis with our settings) against a real redis-server: it never
/// blocks start-up, fails fast while Redis is away, reports the outage once, reconnects by itself, keeps the password
/// out of logs, and runs each script as one EVALSHA.
/// </summary>
public sealed class GatewayRedisTests
{
    [Fact]
    public void Configuration_strings_get_our_defaults_unless_they_set_them()
    {
        var plain = Parse("127.0.0.1:6379");
        Assert.False(plain.AbortOnConnectFail);
        Assert.Same(BacklogPolicy.FailFast, plain.BacklogPolicy);
        Assert.Equal(5000, plain.ConnectTimeout);
        Assert.Equal(1000, plain.SyncTimeout);
        Assert.Equal(1000, plain.AsyncTimeout);

        var full = Parse("redis-a:6380,redis-b:6381,password=s3cret,ssl=true,abortConnect=false,connectTimeout=2000,asyncTimeout=300,defaultDatabase=3");
        Assert.Equal(2, full.EndPoints.Count);
        Assert.Equal("s3cret", full.Password);
        Assert.True(full.Ssl);
        Assert.Equal(2000, full.ConnectTimeout);
        Assert.Equal(300, full.AsyncTimeout);
        Assert.Equal(3, full.DefaultDatabase);
        Assert.Same(BacklogPolicy.FailFast, full.BacklogPolicy);
        Assert.Equal("redis-a:6380,redis-b:6381", RedisSettings.Describe(full));

        var sentinel = Parse("sentinel-1:26379,sentinel-2:26379,serviceName=mymaster,password=s3cret");
        Assert.Equal("sentinel-1:26379,sentinel-2:26379 (service mymaster)", RedisSettings.Describe(sentinel));
    }

    [Theory]
    [InlineData("password=s3cret", "names no Redis endpoint")]
    [InlineData("127.0.0.1:6379,password=s3cret,colour=blue", "not a valid StackExchange.Redis configuration string")]
    [InlineData("127.0.0.1:6379,password=s3cret,connectTimeout=soon", "not a valid StackExchange.Redis configuration string")]
    [InlineData("127.0.0.1:6379,password=s3cret,abortConnect=true", "abortConnect=true")]
    public void Bad_configuration_strings_are_refused_naming_the_key_and_never_the_password(string text, string expected)
    {
        var errors = new List<string>();
        Assert.Null(RedisSettings.Parse(text, RedisSettings.GatewayKey, errors));
        var error = Assert.Single(errors);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.StartsWith("Redis:Configuration ", error, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Started_while_redis_is_down_it_returns_at_once_fails_fast_and_connects_when_redis_comes_up()
    {
        await using var server = RedisServerProcess.NotStarted();
        var logs = new ConcurrentQueue<string>();
        var clock = Stopwatch.StartNew();
        await using var redis = RedisTestConnections.Gateway(server.Endpoint, Capture(logs));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"the constructor took {clock.Elapsed}");
        Assert.True(redis.Configured);
        Assert.False(redis.Available);
        Assert.True(redis.Degraded);
        var connects = 0;
        redis.Connected += (_, _) => Interlocked.Increment(ref connects);

        // The first connect gives up after its timeout and leaves a multiplexer that keeps retrying; commands through it
        // fail at once instead of queueing.
        var multiplexer = await redis.WhenStartedAsync().WithTimeout();
        Assert.NotNull(multiplexer);
        Assert.True(redis.Degraded);
        clock.Restart();
        await Assert.ThrowsAsync<RedisConnectionException>(() => redis.Database!.PingAsync());
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"a command while disconnected took {clock.Elapsed} to fail");

        await server.StartAgainAsync();
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redis.Available));
        Assert.False(redis.Degraded);
        await redis.Database!.StringSetAsync("up", "yes");
        Assert.Equal("yes", await redis.Database.StringGetAsync("up"));
        Assert.Equal(1, Volatile.Read(ref connects));
        Assert.Single(logs, line => line.StartsWith("RedisDisconnected", StringComparison.Ordinal));
        Assert.Single(logs, line => line.StartsWith("RedisConnected", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Killed_under_write_load_in_flight_commands_fail_at_once_the_outage_is_logged_once_and_it_reconnects()
    {
        await using var server = await RedisServerProcess.StartAsync();
        var logs = new ConcurrentQueue<string>();

        // A 30 s command timeout: only the lost connection, not the timeout, may end the blocked commands below.
        await using var redis = RedisTestConnections.Gateway(server.Endpoint + ",asyncTimeout=30000", Capture(logs));
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redis.Available));
        await using var blocking = await RedisTestConnections.AdminAsync(server.Endpoint, TimeSpan.FromSeconds(30));
        var inFlight = Enumerable.Range(0, 3).Select(_ => blocking.RunAsync("BLPOP", "never", 0)).ToArray();

        using var stop = new CancellationTokenSource();
        var payload = new string('x', 64 * 1024);
        var failures = 0;
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await redis.Database!.StringSetAsync($"load-{w}", payload);
                }
                catch (RedisException)
                {
                    Interlocked.Increment(ref failures);
                    await Task.Delay(5);
                }
            }
        })).ToArray();
        await Task.Delay(300);
        Assert.All(inFlight, t => Assert.False(t.IsCompleted));

        var clock = Stopwatch.StartNew();
        server.Kill();
        foreach (var call in inFlight)
        {
            await Assert.ThrowsAsync<RedisConnectionException>(() => call.WaitAsync(TimeSpan.FromSeconds(10)));
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"in-flight commands took {clock.Elapsed} to fail");
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redis.Degraded));
        clock.Restart();
        await Assert.ThrowsAsync<RedisConnectionException>(() => redis.Database!.PingAsync());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"a command while disconnected took {clock.Elapsed} to fail");

        await server.StartAgainAsync();
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redis.Available));
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref failures) > 0));
        await stop.CancelAsync();
        await Task.WhenAll(writers).WithTimeout();

        await redis.Database!.StringSetAsync("back", 1);
        Assert.Equal(1, (long)await redis.Database.StringGetAsync("back"));
        Assert.Single(logs, line => line.StartsWith("RedisDisconnected", StringComparison.Ordinal));
        Assert.Equal(2, logs.Count(line => line.StartsWith("RedisConnected", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_paused_server_times_commands_out_and_the_connection_stays_in_step()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var admin = await RedisTestConnections.AdminAsync(server.Endpoint);
        await using var redis = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        var database = redis.Database!;
        await database.StringSetAsync("k", "before");

        // Far longer than the 1 s command timeout, so a loaded machine still sees the timeout fire inside the pause.
        var pausedFor = TimeSpan.FromMilliseconds(5000);
        var clock = Stopwatch.StartNew();
        await admin.RunAsync("CLIENT", "PAUSE", (long)pausedFor.TotalMilliseconds, "ALL");
        await Assert.ThrowsAsync<RedisTimeoutException>(() => database.StringGetAsync("k"));
        Assert.True(clock.Elapsed < pausedFor, $"the 1 s timeout fired only after the pause ended ({clock.Elapsed})");

        // The late reply to the timed-out GET must be dropped, not handed to the next caller.
        await Task.Delay(pausedFor - clock.Elapsed + TimeSpan.FromMilliseconds(300));
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redis.Available));
        await database.StringSetAsync("k2", "after");
        Assert.Equal("after", await database.StringGetAsync("k2"));
        Assert.Equal("before", await database.StringGetAsync("k"));
    }

    [Fact]
    public async Task Password_and_database_come_from_the_string_a_wrong_password_never_connects_and_no_log_shows_it()
    {
        await using var server = await RedisServerProcess.StartAsync(null, "--requirepass", "s3cret-pw");
        var logs = new ConcurrentQueue<string>();
        await using (var db2 = RedisTestConnections.Gateway(server.Endpoint + ",password=s3cret-pw,defaultDatabase=2", Capture(logs)))
        {
            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(db2.Available));
            await db2.Database!.StringSetAsync("where", "db2");
        }

        await using (var admin = await RedisTestConnections.AdminAsync(server.Endpoint + ",password=s3cret-pw"))
        {
            Assert.True((await admin.GetDatabase(0).StringGetAsync("where")).IsNull);
            Assert.Equal("db2", await admin.GetDatabase(2).StringGetAsync("where"));
        }

        await using var wrong = RedisTestConnections.Gateway(server.Endpoint + ",password=wrong-pw", Capture(logs));
        await wrong.WhenStartedAsync().WithTimeout();
        await Task.Delay(500);
        Assert.False(wrong.Available);
        Assert.True(wrong.Degraded);
        await Assert.ThrowsAnyAsync<RedisException>(() => wrong.Database!.PingAsync());

        Assert.Contains(logs, line => line.StartsWith("RedisConnected", StringComparison.Ordinal) && line.Contains(server.Endpoint, StringComparison.Ordinal));
        Assert.Contains(logs, line => line.StartsWith("RedisDisconnected", StringComparison.Ordinal) && line.Contains(server.Endpoint, StringComparison.Ordinal));
        Assert.DoesNotContain(logs, line => line.Contains("s3cret", StringComparison.Ordinal) || line.Contains("wrong-pw", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Each_affinity_lookup_is_one_evalsha_and_a_flushed_script_cache_is_refilled_by_itself()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var admin = await RedisTestConnections.AdminAsync(server.Endpoint);
        await using var redis = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        var index = new AffinityIndex(redis, new PrefixHasher(new byte[32], 64), new RoutingOptions { LookupTimeout = TimeSpan.FromSeconds(5) }, TimeProvider.System, NullLogger<AffinityIndex>.Instance);
        ulong[] chain = [11, 12, 13, 14];
        string[] workers = ["w1", "w2"];
        await index.RecordSharedAsync("m", chain, "w2", "session");
        await index.LookupAsync("m", chain, workers, "session", TestTimeouts.Token()); // loads the lookup script

        await admin.RunAsync("CONFIG", "RESETSTAT");
        for (var i = 0; i < 20; i++)
        {
            var lookup = await index.LookupAsync("m", chain, workers, i % 2 == 0 ? "session" : null, TestTimeouts.Token());
            Assert.Equal(4, lookup.HeldBlocks["w2"]);
            Assert.Equal(i % 2 == 0 ? "w2" : null, lookup.SessionWorker);
        }

        var calls = await CommandCallsAsync(admin);
        Assert.Equal(20, calls.GetValueOrDefault("evalsha"));
        Assert.Equal(0, calls.GetValueOrDefault("eval"));
        Assert.Equal(0, calls.GetValueOrDefault("script|load"));
        Assert.Equal(0, index.Fallbacks);

        // After SCRIPT FLUSH (as after a restart or failover) the next lookup still answers from Redis.
        await admin.RunAsync("SCRIPT", "FLUSH");
        Assert.Equal(4, (await index.LookupAsync("m", chain, workers, null, TestTimeouts.Token())).HeldBlocks["w2"]);
        Assert.Equal(0, index.Fallbacks);
    }

    private static ConfigurationOptions Parse(string text)
    {
        var errors = new List<string>();
        var options = RedisSettings.Parse(text, RedisSettings.GatewayKey, errors);
        Assert.Empty(errors);
        return options!;
    }

    // INFO commandstats lines: cmdstat_evalsha:calls=20,usec=...
    private static async Task<Dictionary<string, long>> CommandCallsAsync(ConnectionMultiplexer admin)
    {
        var info = (string)(await admin.RunAsync("INFO", "commandstats"))!;
        var calls = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in info.Split('\n', StringSplitOptions.TrimEntries))
        {
            if (line.StartsWith("cmdstat_", StringComparison.Ordinal) && line.IndexOf(":calls=", StringComparison.Ordinal) is var at and > 0)
            {
                var count = line[(at + 7)..].Split(',')[0];
                calls[line[8..at]] = long.Parse(count, CultureInfo.InvariantCulture);
            }
        }

        return calls;
    }

    private static ILoggerFactory Capture(ConcurrentQueue<string> lines) => LoggerFactory.Create(builder => builder.AddProvider(new CapturingProvider(lines)));

    // "EventName: message" per entry of the gateway's Redis log category.
    private sealed class CapturingProvider(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(lines);

        public void Dispose()
        {
        }

        private sealed class Logger(ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue($"{eventId.Name}: {formatter(state, exception)} {exception?.Message}");
        }
    }
}
