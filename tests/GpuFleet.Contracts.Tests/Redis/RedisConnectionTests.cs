using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using GpuFleet.Contracts.Redis;
using GpuFleet.Testing;

namespace GpuFleet.Contracts.Tests.Redis;

/// <summary>The client against a real redis-server that each test starts (and kills, pauses or restarts) itself.</summary>
public sealed class RedisConnectionTests
{
    private static readonly TimeSpan StateWait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Commands_SetGetIncrExpirePttl()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redis = await ConnectedAsync(server.Endpoint);

        Assert.Equal("OK", (await redis.ExecuteAsync("SET", "greeting", "héllo")).AsString());
        Assert.Equal("héllo", (await redis.ExecuteAsync("GET", "greeting")).AsString());
        Assert.True((await redis.ExecuteAsync("GET", "missing")).IsNull);
        Assert.Equal(1, (await redis.ExecuteAsync("INCR", "counter")).AsLong());
        Assert.Equal(11, (await redis.ExecuteAsync("INCRBY", "counter", 10)).AsLong());
        Assert.Equal(11, (await redis.ExecuteAsync("GET", "counter")).AsLong());
        Assert.Equal(1, (await redis.ExecuteAsync("EXPIRE", "counter", 60)).AsLong());
        Assert.InRange((await redis.ExecuteAsync("PTTL", "counter")).AsLong(), 50_000, 60_000);
        Assert.Equal(-2, (await redis.ExecuteAsync("PTTL", "missing")).AsLong());

        var wrongType = await redis.ExecuteAsync("INCR", "greeting");
        Assert.True(wrongType.IsError);
        Assert.StartsWith("ERR", wrongType.ErrorMessage, StringComparison.Ordinal);
        var list = await redis.ExecuteAsync("RPUSH", "list", "a", new byte[] { 0, 255 });
        Assert.Equal(2, list.AsLong());
        var range = (await redis.ExecuteAsync("LRANGE", "list", 0, -1)).AsArray()!;
        Assert.Equal("a", range[0].AsString());
        Assert.Equal(new byte[] { 0, 255 }, range[1].AsBytes());
    }

    [Fact]
    public async Task ThousandConcurrentCommands_FromManyTasks_EachGetsItsOwnReply()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redis = await ConnectedAsync(server.Endpoint, commandTimeout: TimeSpan.FromSeconds(10));

        var tasks = Enumerable.Range(0, 50).Select(worker => Task.Run(async () =>
        {
            var mine = new List<(string Sent, Task<RedisResult> Echo, Task<RedisResult> Incr)>();
            for (var i = 0; i < 10; i++)
            {
                var payload = string.Create(CultureInfo.InvariantCulture, $"worker {worker} call {i} {new string('x', worker * i)}");
                mine.Add((payload, redis.ExecuteAsync("ECHO", payload), redis.ExecuteAsync("INCR", "shared")));
            }

            foreach (var (sent, echo, _) in mine)
            {
                Assert.Equal(sent, (await echo).AsString());
            }

            return await Task.WhenAll(mine.Select(m => m.Incr));
        })).ToArray();

        var counts = (await Task.WhenAll(tasks).WithTimeout()).SelectMany(r => r).Select(r => r.AsLong()).Order().ToArray();
        Assert.Equal(Enumerable.Range(1, 500).Select(i => (long)i), counts);
    }

    [Fact]
    public async Task Batch_IsWrittenWhole_BeforeAnyReply()
    {
        // A fake server that answers nothing until all three commands have arrived: the batch completes only if
        // every command went out without waiting for a reply, that is, in one round trip.
        using var fake = new FakeServer(async stream =>
        {
            var received = new List<byte>();
            var buffer = new byte[4096];
            while (CountCommands(received.ToArray()) < 3)
            {
                var read = await stream.ReadAsync(buffer);
                Assert.NotEqual(0, read);
                received.AddRange(buffer.AsSpan(0, read));
            }

            await stream.WriteAsync("+OK\r\n:7\r\n$3\r\nabc\r\n"u8.ToArray());
        });

        await using var redis = await ConnectedAsync(fake.Endpoint);
        var replies = await redis.ExecuteBatchAsync([new("SET", "a", "abc"), new("INCR", "n"), new("GET", "a")]).WithTimeout();
        Assert.Equal([RedisResult.SimpleString("OK"), RedisResult.Integer(7), RedisResult.BulkString("abc"u8.ToArray())], replies);
    }

    [Fact]
    public async Task MalformedReply_DropsTheConnection_CallerSeesProtocolError()
    {
        using var fake = new FakeServer(async stream =>
        {
            _ = await stream.ReadAsync(new byte[4096]);
            await stream.WriteAsync("!garbage\r\n"u8.ToArray());
        });

        await using var redis = await ConnectedAsync(fake.Endpoint);
        var error = await Assert.ThrowsAsync<RedisConnectionException>(() => redis.ExecuteAsync("PING").WithTimeout());
        Assert.IsType<RedisProtocolException>(error.InnerException);
        await WaitForAsync(() => redis.State == RedisConnectionState.Disconnected);
    }

    [Fact]
    public async Task Batch_MultiExec_AgainstRealServer_StaysTogether()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redis = await ConnectedAsync(server.Endpoint);

        // Other callers' commands run at the same time; none may land inside the transaction.
        var noise = Enumerable.Range(0, 200).Select(_ => redis.ExecuteAsync("INCR", "noise")).ToArray();
        var replies = await redis.ExecuteBatchAsync([new("MULTI"), new("INCR", "t"), new("INCR", "t"), new("EXEC")]);
        await Task.WhenAll(noise);

        Assert.Equal(["OK", "QUEUED", "QUEUED"], replies.Take(3).Select(r => r.AsString()));
        Assert.Equal([1L, 2L], replies[3].AsArray()!.Select(r => r.AsLong()));
        Assert.Equal(200, (await redis.ExecuteAsync("GET", "noise")).AsLong());
    }

    [Fact]
    public async Task Evaluate_AfterScriptFlush_FallsBackToEvalAndCachesAgain()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redis = await ConnectedAsync(server.Endpoint);
        var script = new RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])");

        Assert.Equal("OK", (await redis.ExecuteAsync("SCRIPT", "FLUSH")).AsString());
        Assert.Equal(0, (await redis.ExecuteAsync("SCRIPT", "EXISTS", script.Sha1)).AsArray()![0].AsLong());

        Assert.Equal(5, (await redis.EvaluateAsync(script, ["n"], [5])).AsLong());
        Assert.Equal(1, (await redis.ExecuteAsync("SCRIPT", "EXISTS", script.Sha1)).AsArray()![0].AsLong());
        Assert.Equal(12, (await redis.EvaluateAsync(script, ["n"], [7])).AsLong());

        var broken = await redis.EvaluateAsync(new RedisScript("return redis.call('NOSUCHCOMMAND')"), [], []);
        Assert.True(broken.IsError);
    }

    [Fact]
    public async Task Auth_And_Select_AreSentOnConnect_WrongPasswordNeverConnects()
    {
        await using var server = await RedisServerProcess.StartAsync(null, "--requirepass", "s3cret");
        await using (var db2 = await ConnectedAsync(server.Endpoint, password: "s3cret", database: 2))
        {
            Assert.Equal("OK", (await db2.ExecuteAsync("SET", "where", "db2")).AsString());
        }

        await using (var db0 = await ConnectedAsync(server.Endpoint, password: "s3cret"))
        {
            Assert.True((await db0.ExecuteAsync("GET", "where")).IsNull);
            Assert.Equal("OK", (await db0.ExecuteAsync("SELECT", 2)).AsString());
            Assert.Equal("db2", (await db0.ExecuteAsync("GET", "where")).AsString());
        }

        var changes = new ConcurrentQueue<RedisConnectionStateChangedEventArgs>();
        await using var wrong = RedisConnection.Connect(Options(server.Endpoint, password: "wrong"));
        wrong.StateChanged += (_, e) => changes.Enqueue(e);
        await WaitForAsync(() => wrong.State == RedisConnectionState.Disconnected);
        await Assert.ThrowsAsync<RedisConnectionException>(() => wrong.ExecuteAsync("PING"));
        await Task.Delay(300);
        Assert.NotEqual(RedisConnectionState.Connected, wrong.State);
        Assert.DoesNotContain(changes, e => e.Current == RedisConnectionState.Connected);
    }

    [Fact]
    public async Task ServerKilled_InFlightFailFast_ThenReconnectsByItself()
    {
        await using var server = await RedisServerProcess.StartAsync();
        var changes = new ConcurrentQueue<RedisConnectionState>();
        await using var redis = await ConnectedAsync(server.Endpoint, commandTimeout: TimeSpan.FromSeconds(30));
        redis.StateChanged += (_, e) => changes.Enqueue(e.Current);

        // Blocking pops hold their replies until the server dies; the 30 s command timeout must not be what ends them.
        // (The server runs one client's commands in order, so the later four wait behind the first, unanswered too.)
        var inFlight = Enumerable.Range(0, 5).Select(_ => redis.ExecuteAsync("BLPOP", "never", 0)).ToArray();
        await WaitForBlockedClientAsync(server.Endpoint);
        Assert.All(inFlight, t => Assert.False(t.IsCompleted));

        var clock = Stopwatch.StartNew();
        server.Kill();
        foreach (var call in inFlight)
        {
            await Assert.ThrowsAsync<RedisConnectionException>(() => call.WaitAsync(TimeSpan.FromSeconds(5)));
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"in-flight commands took {clock.Elapsed} to fail");
        await WaitForAsync(() => redis.State == RedisConnectionState.Disconnected);
        Assert.Contains(RedisConnectionState.Disconnected, changes);

        clock.Restart();
        await Assert.ThrowsAsync<RedisConnectionException>(() => redis.ExecuteAsync("PING"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), "a command while disconnected must fail at once");

        await server.StartAgainAsync();
        await WaitForAsync(() => redis.State == RedisConnectionState.Connected);
        Assert.Equal("OK", (await redis.ExecuteAsync("SET", "back", 1)).AsString());
        Assert.Equal(1, (await redis.ExecuteAsync("GET", "back")).AsLong());
        Assert.Equal([RedisConnectionState.Disconnected, RedisConnectionState.Connected], changes.Distinct());
    }

    [Fact]
    public async Task ServerKilled_WhileCommandsAreBeingWritten_StillReconnectsAndDisposesCleanly()
    {
        // Killing the server while a steady stream of writes is in the pipe used to end the supervisor (the writer
        // flushed into the disposed socket): the connection then never left Connected and Dispose threw.
        await using var server = await RedisServerProcess.StartAsync();
        var redis = await ConnectedAsync(server.Endpoint);
        using var stop = new CancellationTokenSource();
        var payload = new string('x', 64 * 1024);
        var writers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await redis.ExecuteAsync("SET", "load", payload);
                }
                catch (RedisException)
                {
                    await Task.Delay(5);
                }
            }
        })).ToArray();
        await Task.Delay(200);

        server.Kill();
        await WaitForAsync(() => redis.State == RedisConnectionState.Disconnected);
        await server.StartAgainAsync();
        await WaitForAsync(() => redis.State == RedisConnectionState.Connected);
        await stop.CancelAsync();
        await Task.WhenAll(writers);

        Assert.Equal("PONG", (await redis.ExecuteAsync("PING")).AsString());
        await redis.DisposeAsync();
    }

    [Fact]
    public async Task PausedServer_TimesOut_AndConnectionStaysInStep()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var admin = await ConnectedAsync(server.Endpoint);
        await using var redis = await ConnectedAsync(server.Endpoint, commandTimeout: TimeSpan.FromMilliseconds(300));
        Assert.Equal("OK", (await redis.ExecuteAsync("SET", "k", "before")).AsString());

        var pausedFor = TimeSpan.FromMilliseconds(1500);
        var clock = Stopwatch.StartNew();
        Assert.Equal("OK", (await admin.ExecuteAsync("CLIENT", "PAUSE", (long)pausedFor.TotalMilliseconds, "ALL")).AsString());
        await Assert.ThrowsAsync<RedisTimeoutException>(() => redis.ExecuteAsync("GET", "k"));
        Assert.True(clock.Elapsed < pausedFor, "the timeout fired only after the pause ended");
        Assert.Equal(RedisConnectionState.Connected, redis.State);

        // The late reply to the timed-out GET arrives first and must be dropped, not handed to the next caller.
        await Task.Delay(pausedFor - clock.Elapsed + TimeSpan.FromMilliseconds(200));
        Assert.Equal("OK", (await redis.ExecuteAsync("SET", "k2", "after")).AsString());
        Assert.Equal("after", (await redis.ExecuteAsync("GET", "k2")).AsString());
        Assert.Equal("before", (await redis.ExecuteAsync("GET", "k")).AsString());
    }

    [Fact]
    public async Task CancelledCaller_ReplyIsDiscarded_NextCallerGetsItsOwn()
    {
        await using var server = await RedisServerProcess.StartAsync();
        await using var redis = await ConnectedAsync(server.Endpoint, commandTimeout: TimeSpan.FromSeconds(10));

        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        var blocked = redis.ExecuteAsync(new RedisCommand("BLPOP", "empty", 1), cancel.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked);

        // Queued behind the BLPOP on the server; its null reply comes first and belongs to nobody now.
        Assert.Equal("mine", (await redis.ExecuteAsync("ECHO", "mine")).AsString());

        using var already = new CancellationTokenSource();
        await already.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => redis.ExecuteAsync(new RedisCommand("INCR", "never-sent"), already.Token));
        Assert.True((await redis.ExecuteAsync("GET", "never-sent")).IsNull);
    }

    [Fact]
    public async Task StartedWhileRedisDown_DoesNotThrow_ConnectsWhenItComesUp()
    {
        await using var server = RedisServerProcess.NotStarted();
        await using var redis = RedisConnection.Connect(Options(server.Endpoint, maxReconnectDelay: TimeSpan.FromMilliseconds(300)));
        Assert.NotEqual(RedisConnectionState.Connected, redis.State);
        await Assert.ThrowsAsync<RedisConnectionException>(() => redis.ExecuteAsync("PING"));
        await Assert.ThrowsAsync<RedisConnectionException>(() => redis.ExecuteBatchAsync([new("PING")]));
        await WaitForAsync(() => redis.State == RedisConnectionState.Disconnected);

        await server.StartAgainAsync();
        await WaitForAsync(() => redis.State == RedisConnectionState.Connected);
        Assert.Equal("PONG", (await redis.ExecuteAsync("PING")).AsString());
    }

    [Fact]
    public async Task VirtualTime_DrivesReconnectBackoff_AndCommandTimeouts()
    {
        await using var server = RedisServerProcess.NotStarted();
        var time = new ManualTimeProvider();
        var options = Options(server.Endpoint, commandTimeout: TimeSpan.FromSeconds(1), maxReconnectDelay: TimeSpan.FromSeconds(5));
        await using var redis = RedisConnection.Connect(options, time: time, random: new Random(3));
        await WaitForAsync(() => redis.State == RedisConnectionState.Disconnected && time.ActiveTimers > 0);

        // The server is up, but the backoff waits on virtual time, so nothing reconnects until the clock moves.
        await server.StartAgainAsync();
        await Task.Delay(500);
        Assert.Equal(RedisConnectionState.Disconnected, redis.State);
        time.Advance(options.MaxReconnectDelay);
        await WaitForAsync(() => redis.State == RedisConnectionState.Connected);

        await using var admin = await ConnectedAsync(server.Endpoint);
        Assert.Equal("OK", (await admin.ExecuteAsync("CLIENT", "PAUSE", 2000, "WRITE")).AsString());
        var stalled = redis.ExecuteAsync("SET", "k", "v");
        await Task.Delay(200);
        Assert.False(stalled.IsCompleted);
        time.Advance(options.CommandTimeout);
        await Assert.ThrowsAsync<RedisTimeoutException>(() => stalled.WaitAsync(TimeSpan.FromSeconds(1)));
        Assert.Equal("OK", (await admin.ExecuteAsync("CLIENT", "UNPAUSE")).AsString());
        Assert.Equal("v", (await redis.ExecuteAsync("GET", "k").WaitAsync(TimeSpan.FromSeconds(5))).AsString());
    }

    [Fact]
    public async Task Dispose_FailsPending_AndRefusesNewCommands()
    {
        await using var server = await RedisServerProcess.StartAsync();
        var redis = await ConnectedAsync(server.Endpoint, commandTimeout: TimeSpan.FromSeconds(30));
        var pending = redis.ExecuteAsync("BLPOP", "never", 0);
        await WaitForBlockedClientAsync(server.Endpoint);

        await redis.DisposeAsync().AsTask().WithTimeout();
        await Assert.ThrowsAsync<RedisConnectionException>(() => pending.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Throws<ObjectDisposedException>(() => { _ = redis.ExecuteAsync("PING"); });
        Assert.Equal(RedisConnectionState.Disconnected, redis.State);
    }

    private static RedisOptions Options(string endpoint, string? password = null, int database = 0, TimeSpan? commandTimeout = null, TimeSpan? maxReconnectDelay = null) => new()
    {
        Endpoint = endpoint,
        Password = password,
        Database = database,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        CommandTimeout = commandTimeout ?? TimeSpan.FromSeconds(5),
        MaxReconnectDelay = maxReconnectDelay ?? TimeSpan.FromMilliseconds(500),
    };

    private static async Task<RedisConnection> ConnectedAsync(string endpoint, string? password = null, int database = 0, TimeSpan? commandTimeout = null)
    {
        var redis = RedisConnection.Connect(Options(endpoint, password, database, commandTimeout));
        await WaitForAsync(() => redis.State == RedisConnectionState.Connected);
        return redis;
    }

    // Proves a blocking command really reached the server (it is in flight, not queued in the client).
    private static async Task WaitForBlockedClientAsync(string endpoint)
    {
        await using var observer = await ConnectedAsync(endpoint);
        var clock = Stopwatch.StartNew();
        while (!(await observer.ExecuteAsync("INFO", "clients")).AsString()!.Contains("blocked_clients:1", StringComparison.Ordinal))
        {
            Assert.True(clock.Elapsed < StateWait, $"no client blocked within {StateWait}");
            await Task.Delay(20);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < StateWait, $"condition not met within {StateWait}");
            await Task.Delay(20);
        }
    }

    private static int CountCommands(byte[] received)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(received));
        var count = 0;
        while (RespParser.TryRead(ref reader, out _))
        {
            count++;
        }

        return count;
    }

    /// <summary>
    /// A fake server on 127.0.0.1 for one connection: <c>serve</c> runs on it, then the connection stays open (the
    /// test decides what the client sees next) until the test's time is up.
    /// </summary>
    private sealed class FakeServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

        public FakeServer(Func<NetworkStream, Task> serve)
        {
            _listener.Start();
            Endpoint = $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
            _ = Task.Run(async () =>
            {
                using var client = await _listener.AcceptTcpClientAsync();
                await serve(client.GetStream());
                await Task.Delay(Timeout.Infinite, TestTimeouts.Token()).ContinueWith(_ => { }, TaskScheduler.Default);
            });
        }

        public string Endpoint { get; }

        public void Dispose() => _listener.Dispose();
    }
}
