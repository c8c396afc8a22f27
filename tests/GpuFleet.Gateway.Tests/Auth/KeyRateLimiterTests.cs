using System.Diagnostics;
using System.Text.Json;
using GpuFleet.Contracts;
using GpuFleet.Gateway.Auth;
using GpuFleet.Gateway.State;
using GpuFleet.Gateway.Tests.State;
using GpuFleet.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace GpuFleet.Gateway.Tests.Auth;

/// <summary>The per-key limiter (GCRA) on virtual time: two replicas sharing a real redis-server, the outage fallback and local-only limits.</summary>
public sealed class KeyRateLimiterTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 10, TimeSpan.Zero);

    private static long StartUs => (Start.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;

    [Fact]
    public async Task Two_replicas_share_one_requests_budget_and_retry_after_is_exact()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redisA = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        await using var redisB = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        var clock = new ManualTimeProvider(Start);
        var a = new KeyRateLimiter(redisA, clock, NullLogger<KeyRateLimiter>.Instance);
        var b = new KeyRateLimiter(redisB, clock, NullLogger<KeyRateLimiter>.Instance);
        var alice = new ApiKeyIdentity("alice", 5, null);

        for (var i = 0; i < 5; i++)
        {
            var decision = await (i % 2 == 0 ? a : b).AcquireAsync(alice, 100, CancellationToken.None);
            Assert.True(decision.Allowed, $"request {i}");
            Assert.Equal(new RateLimitWindow(5, i, 4 - i, TimeSpan.FromSeconds(12 * (i + 1))), decision.Requests);
            Assert.Null(decision.Tokens);
        }

        // Both replicas see the budget spent. A 5-per-minute key gets one request back every 12 s, so the honest
        // wait is 12 s.
        foreach (var replica in new[] { a, b })
        {
            var refused = await replica.AcquireAsync(alice, 100, CancellationToken.None);
            Assert.False(refused.Allowed);
            Assert.Equal(RateLimitDimension.Requests, refused.RefusedBy);
            Assert.Equal(TimeSpan.FromSeconds(12), refused.RetryAfter);
            Assert.Equal(new RateLimitWindow(5, 5, 0, TimeSpan.FromSeconds(60)), refused.Requests);
        }

        clock.Advance(TimeSpan.FromSeconds(11));
        Assert.False((await b.AcquireAsync(alice, 0, CancellationToken.None)).Allowed);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True((await a.AcquireAsync(alice, 0, CancellationToken.None)).Allowed);
        var again = await b.AcquireAsync(alice, 0, CancellationToken.None);
        Assert.False(again.Allowed);

        Assert.Equal(TimeSpan.FromSeconds(12), again.RetryAfter);

        // Counters are named by the key's name (never its secret or hash) and expire.
        await using var admin = await RedisTestConnections.AdminAsync(server.Endpoint);
        var keys = ((RedisResult[])(await admin.RunAsync("KEYS", "*"))!).Select(k => (string)k!).Order().ToArray();
        Assert.Equal(["gpufleet:limit:{alice}:rpm"], keys);
        Assert.Equal(StartUs + 72_000_000, (long)await admin.RunAsync("GET", keys[0]));
        Assert.InRange((long)await admin.RunAsync("PTTL", keys[0]), 1, 130_000);
    }

    [Fact]
    public async Task Tokens_are_estimated_up_front_and_settled_to_the_real_usage_across_replicas()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redisA = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        await using var redisB = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        var clock = new ManualTimeProvider(Start);
        var a = new KeyRateLimiter(redisA, clock, NullLogger<KeyRateLimiter>.Instance);
        var b = new KeyRateLimiter(redisB, clock, NullLogger<KeyRateLimiter>.Instance);
        var bob = new ApiKeyIdentity("bob", 100, 1000);

        // 1000 tokens per minute: each token holds the bucket 60 ms, each request (100 per minute) 600 ms.
        var first = await a.AcquireAsync(bob, 600, CancellationToken.None);
        Assert.True(first.Allowed);
        Assert.Equal(new RateLimitWindow(1000, 0, 400, TimeSpan.FromSeconds(36)), first.Tokens);
        Assert.Equal(new RateLimitWindow(100, 0, 99, TimeSpan.FromMilliseconds(600)), first.Requests);

        var second = await b.AcquireAsync(bob, 600, CancellationToken.None);
        Assert.False(second.Allowed);
        Assert.Equal(RateLimitDimension.Tokens, second.RefusedBy);
        Assert.Equal(new RateLimitWindow(1000, 600, 400, TimeSpan.FromSeconds(36)), second.Tokens);
        Assert.Equal(new RateLimitWindow(100, 1, 99, TimeSpan.FromMilliseconds(600)), second.Requests);
        Assert.Equal(TimeSpan.FromSeconds(12), second.RetryAfter); // 200 tokens drain in 12 s

        // The first request really used 100 tokens: the 500 given back let the second one in.
        await b.SettleAsync(bob, 600, 100, CancellationToken.None);
        var third = await a.AcquireAsync(bob, 600, CancellationToken.None);
        Assert.True(third.Allowed);
        Assert.Equal(300, third.Tokens!.Value.Remaining);

        // It used 900: 100 + 900 fill the minute, so even a one-token request waits.
        await a.SettleAsync(bob, 600, 900, CancellationToken.None);
        var full = await b.AcquireAsync(bob, 1, CancellationToken.None);
        Assert.False(full.Allowed);
        Assert.Equal(1000, full.Tokens!.Value.Used);

        // Half a minute later half has drained; an overestimate of 900 given back empties the rest (never below empty).
        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(500, (await b.AcquireAsync(bob, 0, CancellationToken.None)).Tokens!.Value.Used);
        await a.SettleAsync(bob, 900, 0, CancellationToken.None);
        var after = await b.AcquireAsync(bob, 0, CancellationToken.None);
        Assert.Equal(new RateLimitWindow(1000, 0, 1000, TimeSpan.Zero), after.Tokens);

        // An estimate above the whole tokens limit can never fit: refused without counting and without a retry time.
        var tooLarge = await a.AcquireAsync(bob, 1001, CancellationToken.None);
        Assert.False(tooLarge.Allowed);
        Assert.True(tooLarge.RequestTooLarge);
        Assert.Equal(TimeSpan.Zero, tooLarge.RetryAfter);
        Assert.Equal(after.Requests!.Value.Remaining, (await a.AcquireAsync(bob, 0, CancellationToken.None)).Requests!.Value.Remaining + 1);
    }

    [Fact]
    public async Task When_redis_dies_requests_are_decided_locally_at_once()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redis = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        await DecideThroughTheCrashAsync(server, redis);
    }

    private static async Task DecideThroughTheCrashAsync(RedisServerProcess server, GatewayRedis redis)
    {
        var clock = new ManualTimeProvider(Start);
        var limiter = new KeyRateLimiter(redis, clock, NullLogger<KeyRateLimiter>.Instance);
        var carol = new ApiKeyIdentity("carol", 3, 1000);
        Assert.True((await limiter.AcquireAsync(carol, 10, CancellationToken.None)).Allowed);
        Assert.True((await limiter.AcquireAsync(carol, 10, CancellationToken.None)).Allowed);

        server.Kill();
        var watch = Stopwatch.StartNew();
        var allowed = 0;
        for (var i = 0; i < 6; i++)
        {
            var decision = await limiter.AcquireAsync(carol, 10, CancellationToken.None);
            allowed += decision.Allowed ? 1 : 0;
            await limiter.SettleAsync(carol, 10, 20, CancellationToken.None);
        }

        // A fresh local budget of 3 (the shared count is out of reach), decided without waiting on the dead server
        // longer than one command timeout.
        Assert.Equal(3, allowed);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task A_redis_that_stops_answering_costs_one_command_timeout_then_is_skipped()
    {
        await using var server = await RedisServerProcess.StartAsync(null, "--enable-debug-command", "yes");
        await using var redis = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        await using var admin = await RedisTestConnections.AdminAsync(server.Endpoint, TimeSpan.FromSeconds(1));
        var limiter = new KeyRateLimiter(redis, new ManualTimeProvider(Start), NullLogger<KeyRateLimiter>.Instance);
        var dave = new ApiKeyIdentity("dave", 100, null);
        Assert.True((await limiter.AcquireAsync(dave, 0, CancellationToken.None)).Allowed);

        // The server hangs with the connection open, as a paused process or a partition looks to a client.
        var sleeping = admin.RunAsync("DEBUG", "SLEEP", 4);
        await Task.Delay(200);
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < 10; i++)
        {
            Assert.True((await limiter.AcquireAsync(dave, 0, CancellationToken.None)).Allowed);
        }

        // One timeout of 1 s (the library checks timeouts once a second, so up to 2 s), not ten.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(4), $"took {watch.Elapsed}");
        await Assert.ThrowsAsync<RedisTimeoutException>(() => sleeping);
    }

    [Fact]
    public async Task After_an_outage_limits_are_shared_again()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redis = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        var limiter = new KeyRateLimiter(redis, new ManualTimeProvider(Start), NullLogger<KeyRateLimiter>.Instance);
        var erin = new ApiKeyIdentity("erin", 3, null);
        Assert.True((await limiter.AcquireAsync(erin, 0, CancellationToken.None)).Allowed);

        server.Kill();
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redis.Degraded));
        Assert.Equal(0, (await limiter.AcquireAsync(erin, 0, CancellationToken.None)).Requests!.Value.Used); // local, fresh

        await server.StartAgainAsync();
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(redis.Available));
        var shared = await limiter.AcquireAsync(erin, 0, CancellationToken.None);
        Assert.True(shared.Allowed);
        Assert.Equal(0, shared.Requests!.Value.Used); // the restarted server holds no counts
        await using var admin = await RedisTestConnections.AdminAsync(server.Endpoint);
        Assert.Equal(StartUs + 20_000_000, (long)await admin.RunAsync("GET", "gpufleet:limit:{erin}:rpm"));
    }

    [Fact]
    public async Task Without_redis_limits_hold_per_process_and_keys_without_limits_skip_everything()
    {
        await using var redis = RedisTestConnections.Gateway(null);
        Assert.False(redis.Configured);
        Assert.False(redis.Degraded);
        var clock = new ManualTimeProvider(Start.AddSeconds(40));
        var limiter = new KeyRateLimiter(redis, clock, NullLogger<KeyRateLimiter>.Instance);
        var dave = new ApiKeyIdentity("dave", 2, null);
        Assert.True((await limiter.AcquireAsync(dave, 5, CancellationToken.None)).Allowed);
        Assert.True((await limiter.AcquireAsync(dave, 5, CancellationToken.None)).Allowed);
        var refused = await limiter.AcquireAsync(dave, 5, CancellationToken.None);
        Assert.False(refused.Allowed);

        // Two per minute: one comes back every 30 s.
        Assert.Equal(TimeSpan.FromSeconds(30), refused.RetryAfter);
        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.False((await limiter.AcquireAsync(dave, 5, CancellationToken.None)).Allowed);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True((await limiter.AcquireAsync(dave, 5, CancellationToken.None)).Allowed);

        var unlimited = await limiter.AcquireAsync(new ApiKeyIdentity("erin", null, null), 1_000_000, CancellationToken.None);
        Assert.Same(RateLimitDecision.Unlimited, unlimited);
    }

    [Fact]
    public async Task Keys_without_limits_never_reach_redis()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redis = await RedisTestConnections.ConnectedAsync(server.Endpoint);
        var limiter = new KeyRateLimiter(redis, TimeProvider.System, NullLogger<KeyRateLimiter>.Instance);
        var erin = new ApiKeyIdentity("erin", null, null);
        for (var i = 0; i < 10; i++)
        {
            Assert.True((await limiter.AcquireAsync(erin, 100, CancellationToken.None)).Allowed);
            await limiter.SettleAsync(erin, 100, 50, CancellationToken.None);
        }

        await limiter.SettleAsync(new ApiKeyIdentity("frank", 10, null), 100, 50, CancellationToken.None);
        await using var admin = await RedisTestConnections.AdminAsync(server.Endpoint);
        Assert.Equal(0, (long)await admin.RunAsync("DBSIZE"));
    }

    [Fact]
    public async Task Headers_and_the_429_follow_openai()
    {
        await using var redis = RedisTestConnections.Gateway(null);
        var clock = new ManualTimeProvider(Start);
        var limiter = new KeyRateLimiter(redis, clock, NullLogger<KeyRateLimiter>.Instance);
        var gina = new ApiKeyIdentity("gina", 10, 1000);
        var allowed = await limiter.AcquireAsync(gina, 700, CancellationToken.None);
        var context = new DefaultHttpContext();
        RateLimitResponses.WriteHeaders(context.Response, allowed);
        Assert.Equal("10", context.Response.Headers["x-ratelimit-limit-requests"]);
        Assert.Equal("9", context.Response.Headers["x-ratelimit-remaining-requests"]);
        Assert.Equal("6s", context.Response.Headers["x-ratelimit-reset-requests"]);
        Assert.Equal("1000", context.Response.Headers["x-ratelimit-limit-tokens"]);
        Assert.Equal("300", context.Response.Headers["x-ratelimit-remaining-tokens"]);
        Assert.Equal("42s", context.Response.Headers["x-ratelimit-reset-tokens"]);

        // 10 s later 533.3 tokens are still held: 700 more need 14 s more draining.
        clock.Advance(TimeSpan.FromSeconds(10));
        var refused = await limiter.AcquireAsync(gina, 700, CancellationToken.None);
        Assert.False(refused.Allowed);
        context = new DefaultHttpContext();
        context.Response.Body = new MemoryStream();
        await RateLimitResponses.WriteRefusalAsync(context, refused);
        Assert.Equal(429, context.Response.StatusCode);
        Assert.Equal("466", context.Response.Headers["x-ratelimit-remaining-tokens"]);
        Assert.Equal("application/json", context.Response.ContentType);
        using var body = JsonDocument.Parse(((MemoryStream)context.Response.Body).ToArray());
        var error = body.RootElement.GetProperty("error");
        Assert.StartsWith("Rate limit reached for tokens per minute (TPM): limit 1000, used 534, requested 700. Please try again in 14s.", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());

        Assert.Equal(TimeSpan.FromSeconds(14), refused.RetryAfter);
        Assert.Equal("14", context.Response.Headers.RetryAfter);

        Assert.Equal("1ms", RateLimitResponses.FormatDuration(TimeSpan.FromTicks(1)));
        Assert.Equal("20ms", RateLimitResponses.FormatDuration(TimeSpan.FromMilliseconds(20)));
        Assert.Equal("1.5s", RateLimitResponses.FormatDuration(TimeSpan.FromMilliseconds(1500)));
        Assert.Equal("6m0s", RateLimitResponses.FormatDuration(TimeSpan.FromMinutes(6)));
        Assert.Equal(1, RetryAfter.Seconds(TimeSpan.FromMilliseconds(1), int.MaxValue)); // the limiter's rounding: up, at least 1, no cap

        var grpc = new DefaultHttpContext();
        grpc.Request.ContentType = "application/grpc";
        await RateLimitResponses.WriteRefusalAsync(grpc, refused);
        Assert.Equal(200, grpc.Response.StatusCode);
        Assert.Equal("8", grpc.Response.Headers["grpc-status"]);
    }
}
