using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GpuFleet.Contracts.Redis;

/// <summary>
/// One multiplexed, pipelined connection to a Redis server that reconnects by itself: many callers share it,
/// their commands go out in order through one writer and replies are matched first-in first-out by one reader.
/// </summary>
/// <remarks>
/// While the connection is down every command fails at once with <see cref="RedisConnectionException"/> rather
/// than queueing, so a Redis outage degrades the gateway instead of stalling it. Subscribe to
/// <see cref="StateChanged"/> and then read <see cref="State"/>: the background connect may finish in between.
/// Never send blocking commands (BLPOP, WAIT, ...) or SUBSCRIBE on it: the server answers one connection's
/// commands in order, so one blocked command holds up every caller behind it, and pub/sub breaks reply matching.
/// </remarks>
public sealed class RedisConnection : IAsyncDisposable
{
    // Commands accepted but not yet written. The writer drains this far faster than callers fill it; the bound
    // only matters if the socket stalls, and then failing fast beats growing without limit.
    private const int WriteQueueCapacity = 16 * 1024;

    // Under sustained load the queue may never run dry; flushing at this size keeps the send buffer bounded and
    // the first commands' latency low, while small bursts still share one flush.
    private const int FlushThresholdBytes = 64 * 1024;

    private readonly RedisOptions _options;
    private readonly string _host;
    private readonly int _port;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _stateLock = new();
    private readonly Task _supervisor;
    private volatile Session? _session;
    private RedisConnectionState _state = RedisConnectionState.Connecting;
    private int _disposed;

    private RedisConnection(RedisOptions options, string host, int port, ILogger logger, TimeProvider time, Random random)
    {
        _options = options;
        _host = host;
        _port = port;
        _logger = logger;
        _time = time;
        _random = random;
        _supervisor = Task.Run(SuperviseAsync);
    }

    /// <summary>Raised on the connection's background task whenever <see cref="State"/> changes; handlers must be quick.</summary>
    public event EventHandler<RedisConnectionStateChangedEventArgs>? StateChanged;

    public RedisConnectionState State
    {
        get
        {
            lock (_stateLock)
            {
                return _state;
            }
        }
    }

    /// <summary>The endpoint as configured (<c>host:port</c>).</summary>
    public string Endpoint => _options.Endpoint;

    /// <summary>
    /// Returns at once and connects in the background, retrying with backoff for as long as the connection
    /// lives: a gateway starts whether or not Redis is up. Throws only for invalid <paramref name="options"/>.
    /// </summary>
    public static RedisConnection Connect(RedisOptions options, ILogger? logger = null, TimeProvider? time = null, Random? random = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        RedisOptions.TryParseEndpoint(options.Endpoint, out var host, out var port);
        return new RedisConnection(options, host, port, logger ?? NullLogger.Instance, time ?? TimeProvider.System, random ?? new Random());
    }

    /// <summary>Sends one command; the reply (error replies included, as values) or a <see cref="RedisException"/>.</summary>
    public Task<RedisResult> ExecuteAsync(string command, params RedisArgument[] args) =>
        ExecuteAsync(new RedisCommand(command, args), CancellationToken.None);

    /// <summary>
    /// Sends one command. Fails with <see cref="RedisConnectionException"/> at once while disconnected, with
    /// <see cref="RedisTimeoutException"/> after <see cref="RedisOptions.CommandTimeout"/>; cancelling abandons
    /// the reply without disturbing the connection.
    /// </summary>
    public Task<RedisResult> ExecuteAsync(RedisCommand command, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var session = _session;
        if (session is null)
        {
            return Task.FromException<RedisResult>(NotConnected());
        }

        var pending = new PendingReply(command);
        pending.Start(_time, _options.CommandTimeout, cancellationToken);
        session.Enqueue(new WriteItem(pending, null));
        return pending.Task;
    }

    /// <summary>
    /// Sends several commands back to back in one write and one flush (one round trip), with no other caller's
    /// command between them (so MULTI ... EXEC works); the replies in the same order.
    /// </summary>
    public async Task<IReadOnlyList<RedisResult>> ExecuteBatchAsync(IReadOnlyList<RedisCommand> commands, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commands);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (commands.Count == 0)
        {
            return [];
        }

        var session = _session ?? throw NotConnected();
        var batch = new PendingReply[commands.Count];
        var tasks = new Task<RedisResult>[batch.Length];
        for (var i = 0; i < batch.Length; i++)
        {
            batch[i] = new PendingReply(commands[i]);
            batch[i].Start(_time, _options.CommandTimeout, cancellationToken);
            tasks[i] = batch[i].Task;
        }

        session.Enqueue(new WriteItem(null, batch));
        return await Task.WhenAll(tasks);
    }

    /// <summary>
    /// Runs a Lua script by its SHA1 (EVALSHA); when the server answers NOSCRIPT (restart, failover, SCRIPT
    /// FLUSH) it is sent once more in full with EVAL, which also caches it again for the next EVALSHA.
    /// </summary>
    public async Task<RedisResult> EvaluateAsync(RedisScript script, IReadOnlyList<RedisArgument> keys, IReadOnlyList<RedisArgument> args, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(script);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(args);
        var reply = await ExecuteAsync(ScriptCommand("EVALSHA", script.Sha1, keys, args), cancellationToken);
        if (reply.IsError && reply.ErrorMessage!.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            reply = await ExecuteAsync(ScriptCommand("EVAL", script.Text, keys, args), cancellationToken);
        }

        return reply;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        await _supervisor;
        _stopping.Dispose();
    }

    private static RedisCommand ScriptCommand(string name, string scriptOrSha, IReadOnlyList<RedisArgument> keys, IReadOnlyList<RedisArgument> args)
    {
        var all = new RedisArgument[2 + keys.Count + args.Count];
        all[0] = scriptOrSha;
        all[1] = keys.Count;
        for (var i = 0; i < keys.Count; i++)
        {
            all[2 + i] = keys[i];
        }

        for (var i = 0; i < args.Count; i++)
        {
            all[2 + keys.Count + i] = args[i];
        }

        return new RedisCommand(name, all);
    }

    private RedisConnectionException NotConnected() =>
        new($"Redis at {_options.Endpoint} is not connected (state {State}); the command was not sent.");

    // Connect, serve until the connection drops, back off, repeat, until disposed.
    private async Task SuperviseAsync()
    {
        var stopping = _stopping.Token;
        var attempt = 0;
        while (!stopping.IsCancellationRequested)
        {
            Session? session = null;
            Exception? error = null;
            var wasConnected = false;
            try
            {
                session = await OpenAsync(stopping);
                attempt = 0;
                wasConnected = true;
                _session = session;
                RedisLog.Connected(_logger, _options.Endpoint);
                SetState(RedisConnectionState.Connected, null);
                error = await session.RunToEndAsync();
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                error = ex;
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                // Disposed while connecting or connected.
            }

            // Refuse new commands first, then fail everything the lost connection still held.
            _session = null;
            var failed = 0;
            if (session is not null)
            {
                var reason = stopping.IsCancellationRequested
                    ? new RedisConnectionException($"The connection to Redis at {_options.Endpoint} was disposed.")
                    : new RedisConnectionException($"The connection to Redis at {_options.Endpoint} was lost.", error);
                failed = await session.CloseAsync(reason);
            }

            if (stopping.IsCancellationRequested)
            {
                break;
            }

            if (wasConnected)
            {
                RedisLog.ConnectionLost(_logger, _options.Endpoint, failed, error);
            }

            SetState(RedisConnectionState.Disconnected, error);
            var delay = RedisBackoff.NextDelay(attempt++, _options.MaxReconnectDelay, _random);
            if (!wasConnected && attempt == 1)
            {
                RedisLog.ConnectFailed(_logger, _options.Endpoint, attempt, (long)delay.TotalMilliseconds, error!);
            }
            else if (!wasConnected)
            {
                RedisLog.ReconnectFailed(_logger, _options.Endpoint, attempt, (long)delay.TotalMilliseconds, error!);
            }

            try
            {
                await Task.Delay(delay, _time, stopping);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        SetState(RedisConnectionState.Disconnected, null);
    }

    private async Task<Session> OpenAsync(CancellationToken stopping)
    {
        using var timeout = new CancellationTokenSource(_options.ConnectTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, timeout.Token);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Session? session = null;
        try
        {
            try
            {
                await socket.ConnectAsync(_host, _port, linked.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !stopping.IsCancellationRequested)
            {
                throw new RedisConnectionException($"Connecting to Redis at {_options.Endpoint} took longer than {_options.ConnectTimeout}.");
            }

            // Dead peers behind a silent network are noticed by TCP keep-alive rather than never.
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            session = new Session(socket, stopping);
            session.Start();
            socket = null;

            // AUTH and SELECT go through the session itself before it is published, so no caller's command can precede them.
            var handshake = new List<RedisCommand>(2);
            if (_options.Password is { } password)
            {
                handshake.Add(new RedisCommand("AUTH", password));
            }

            if (_options.Database != 0)
            {
                handshake.Add(new RedisCommand("SELECT", _options.Database));
            }

            if (handshake.Count > 0)
            {
                var replies = new PendingReply[handshake.Count];
                for (var i = 0; i < replies.Length; i++)
                {
                    replies[i] = new PendingReply(handshake[i]);
                    replies[i].Start(_time, _options.ConnectTimeout, linked.Token);
                }

                session.Enqueue(new WriteItem(null, replies));
                var ended = session.Ended;
                for (var i = 0; i < replies.Length; i++)
                {
                    // A connection the server drops during the handshake fails it now, not at the connect timeout.
                    if (await Task.WhenAny(replies[i].Task, ended) != replies[i].Task)
                    {
                        throw new RedisConnectionException($"Redis at {_options.Endpoint} closed the connection during {handshake[i].Name}.");
                    }

                    var reply = await replies[i].Task;
                    if (reply.IsError)
                    {
                        throw new RedisConnectionException($"Redis at {_options.Endpoint} refused {handshake[i].Name}: {reply.ErrorMessage}");
                    }
                }
            }

            return session;
        }
        catch
        {
            socket?.Dispose();
            if (session is not null)
            {
                await session.CloseAsync(new RedisConnectionException($"Connecting to Redis at {_options.Endpoint} failed."));
            }

            throw;
        }
    }

    private void SetState(RedisConnectionState state, Exception? error)
    {
        RedisConnectionState previous;
        lock (_stateLock)
        {
            previous = _state;
            if (previous == state)
            {
                return;
            }

            _state = state;
        }

        try
        {
            StateChanged?.Invoke(this, new RedisConnectionStateChangedEventArgs(previous, state, error));
        }
        catch (Exception ex)
        {
            // A subscriber's bug must not stop reconnecting.
            RedisLog.StateHandlerFailed(_logger, ex);
        }
    }

    // A single command (no allocation beyond its PendingReply) or a batch written without interleaving.
    private readonly record struct WriteItem(PendingReply? Single, PendingReply[]? Batch);

    // One TCP connection's life: its writer loop, its reader loop and the FIFO between them.
    private sealed class Session
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly PipeReader _input;
        private readonly PipeWriter _output;
        private readonly CancellationTokenSource _closing;
        private readonly ConcurrentQueue<PendingReply> _awaitingReply = new();
        private readonly Channel<WriteItem> _writes = Channel.CreateBounded<WriteItem>(new BoundedChannelOptions(WriteQueueCapacity)
        {
            SingleReader = true, // the writer loop
            SingleWriter = false, // any caller
            FullMode = BoundedChannelFullMode.Wait, // only TryWrite is used: full means refused, never dropped silently
            AllowSynchronousContinuations = false, // a caller's TryWrite must not run the writer loop inline
        });

        private Task _readLoop = Task.CompletedTask;
        private Task _writeLoop = Task.CompletedTask;

        public Session(Socket socket, CancellationToken stopping)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
            _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(leaveOpen: true));
            _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
            _closing = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        }

        public void Start()
        {
            _readLoop = Task.Run(ReadLoopAsync);
            _writeLoop = Task.Run(WriteLoopAsync);
        }

        public void Enqueue(WriteItem item)
        {
            if (!_writes.Writer.TryWrite(item))
            {
                var error = new RedisConnectionException(_closing.IsCancellationRequested
                    ? "The Redis connection closed before the command was sent."
                    : $"More than {WriteQueueCapacity} Redis commands are waiting to be written; the command was not sent.");
                Fail(item, error);
            }
        }

        /// <summary>Completes when either loop ends.</summary>
        public Task<Task> Ended => Task.WhenAny(_readLoop, _writeLoop);

        // Completes when both loops have ended (either one ending cancels the other); the error that ended them.
        public async Task<Exception> RunToEndAsync()
        {
            try
            {
                await Task.WhenAll(_readLoop, _writeLoop);
            }
            catch (Exception)
            {
                // Inspected below: the loop that failed first shows its own error, the other only a cancellation.
            }

            return Cause(_readLoop) ?? Cause(_writeLoop) ?? new RedisConnectionException("The server closed the connection.");

            static Exception? Cause(Task loop) =>
                loop.Exception?.GetBaseException() is { } error and not OperationCanceledException ? error : null;
        }

        // Stops both loops and fails every command the session still holds; how many were failed.
        public async Task<int> CloseAsync(Exception error)
        {
            _writes.Writer.TryComplete();
            await _closing.CancelAsync();
            _socket.Dispose();
            try
            {
                await Task.WhenAll(_readLoop, _writeLoop);
            }
            catch (Exception)
            {
                // The loops end with the errors of a closed socket; the cause was recorded by whoever closed it.
            }

            var failed = 0;
            while (_writes.Reader.TryRead(out var item))
            {
                failed += Fail(item, error);
            }

            while (_awaitingReply.TryDequeue(out var pending))
            {
                failed += pending.Task.IsCompleted ? 0 : 1;
                pending.Fail(error);
            }

            // Completed with the error, the pipes do not flush leftovers into the disposed socket; a failure here must
            // not end the supervisor's reconnect loop either.
            try
            {
                await _input.CompleteAsync(error);
                await _output.CompleteAsync(error);
                await _stream.DisposeAsync();
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
            {
                // The socket is gone: nothing is left to release.
            }

            _closing.Dispose();
            return failed;
        }

        private static int Fail(WriteItem item, Exception error)
        {
            if (item.Single is { } single)
            {
                var open = single.Task.IsCompleted ? 0 : 1;
                single.Fail(error);
                return open;
            }

            var failed = 0;
            foreach (var pending in item.Batch!)
            {
                failed += pending.Task.IsCompleted ? 0 : 1;
                pending.Fail(error);
            }

            return failed;
        }

        private async Task WriteLoopAsync()
        {
            var closing = _closing.Token;
            var reader = _writes.Reader;
            try
            {
                while (await reader.WaitToReadAsync(closing))
                {
                    // Everything queued goes out in one flush: concurrent callers share round trips.
                    while (_output.UnflushedBytes < FlushThresholdBytes && reader.TryRead(out var item))
                    {
                        if (item.Single is { } single)
                        {
                            // A command whose caller already gave up is not sent at all.
                            if (!single.Task.IsCompleted)
                            {
                                Write(single);
                            }
                        }
                        else if (Array.Exists(item.Batch!, p => !p.Task.IsCompleted))
                        {
                            // A batch is all or nothing: skipping part of MULTI ... EXEC would change its meaning.
                            foreach (var pending in item.Batch!)
                            {
                                Write(pending);
                            }
                        }
                    }

                    var flushed = await _output.FlushAsync(closing);
                    if (flushed.IsCompleted)
                    {
                        return;
                    }
                }
            }
            finally
            {
                // Whatever ended the writer ends the session, so the reader is not left waiting for replies to nothing.
                await _closing.CancelAsync();
            }
        }

        // Into the FIFO before the bytes can leave, so a reply never arrives ahead of its entry.
        private void Write(PendingReply pending)
        {
            _awaitingReply.Enqueue(pending);
            RespWriter.WriteCommand(_output, pending.Command);
        }

        private async Task ReadLoopAsync()
        {
            var closing = _closing.Token;
            try
            {
                while (true)
                {
                    var read = await _input.ReadAsync(closing);
                    var buffer = read.Buffer;
                    var consumed = DispatchReplies(buffer);
                    _input.AdvanceTo(consumed, buffer.End);
                    if (read.IsCompleted)
                    {
                        throw new RedisConnectionException("The server closed the connection.");
                    }
                }
            }
            finally
            {
                await _closing.CancelAsync();
            }
        }

        private SequencePosition DispatchReplies(in ReadOnlySequence<byte> buffer)
        {
            var reader = new SequenceReader<byte>(buffer);
            while (RespParser.TryRead(ref reader, out var reply))
            {
                if (!_awaitingReply.TryDequeue(out var pending))
                {
                    throw new RedisProtocolException("The server sent a reply no command was waiting for.");
                }

                pending.Complete(reply);
            }

            return reader.Position;
        }
    }
}
