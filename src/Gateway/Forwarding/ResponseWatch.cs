using System.Text;
using GpuFleet.Contracts;
using GpuFleet.Gateway.Observability;
using GpuFleet.Gateway.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// Watches one forwarded response as it is written to the client: when the first byte went out and when the last
/// did (the time-to-first-token and inter-token idle timeouts cancel the forwarding through <see cref="Cancelled"/>),
/// and the usage report workers end their streams with, which it takes out of the stream (it is meant for the gateway,
/// not for clients) and records in the attempt's <see cref="WorkerAnswerFeature"/>. Also stands in for the request lifetime feature, so that
/// when the worker side breaks after the response started, YARP's abort of the client connection is turned into a
/// proper end of the stream (an error event) by the failover stage (FailoverMiddleware).
/// </summary>
internal sealed class ResponseWatch : Stream, IHttpRequestLifetimeFeature
{
    private static readonly byte[] UsageMarker = Encoding.ASCII.GetBytes(UsageReport.CommentPrefix);
    private readonly Stream _inner;
    private readonly IHttpRequestLifetimeFeature _clientLifetime;
    private readonly CancellationTokenSource _timeout = new();
    private readonly CancellationTokenSource _linked;
    private readonly TimeProvider _time;
    private readonly ForwardingOptions _options;
    private readonly ResponseWatchdog _watchdog;
    private readonly RequestObservation? _observation;
    private readonly WorkerAnswerFeature _answer;
    private readonly long _startedAt;
    private readonly List<byte> _line = [];
    private readonly List<byte> _held = []; // a line start that may still become the usage marker: not written yet
    private long _firstTokenTimeoutTicks;
    private long _writeBlockedSince; // when the pending write to the client began; 0 while none is pending
    private long _firstByteAt;
    private long _lastWriteAt;
    private bool _inUsageLine;
    private int _markerMatched;
    private bool _atLineStart = true;
    private bool _dropBlankLine;

    public ResponseWatch(HttpContext context, WorkerAnswerFeature answer, ForwardingOptions options, TimeProvider time, ResponseWatchdog watchdog)
    {
        _inner = context.Response.Body;
        _answer = answer;
        _clientLifetime = context.Features.Get<IHttpRequestLifetimeFeature>()!;
        _linked = CancellationTokenSource.CreateLinkedTokenSource(_clientLifetime.RequestAborted, _timeout.Token);
        _time = time;
        _options = options;
        _startedAt = time.GetTimestamp();
        _firstTokenTimeoutTicks = options.FirstTokenTimeout.Ticks;
        _watchdog = watchdog;
        _observation = context.Features.Get<RequestObservation>();
        watchdog.Add(this);
    }

    /// <summary>
    /// This attempt's wait for the first byte, counted from the watch's start: <see cref="ForwardingOptions.FirstTokenTimeout"/>
    /// until the chosen worker is known, then that plus the prompt's expected prefill there (see FirstTokenTimeouts).
    /// </summary>
    public TimeSpan FirstTokenTimeout
    {
        get => TimeSpan.FromTicks(Volatile.Read(ref _firstTokenTimeoutTicks));
        set => Volatile.Write(ref _firstTokenTimeoutTicks, value.Ticks);
    }

    /// <summary>The gateway's own timeout fired (not the client).</summary>
    public string? TimedOut { get; private set; }

    /// <summary>The client stopped reading for <see cref="ForwardingOptions.ClientStallTimeout"/>; its connection was closed.</summary>
    public bool ClientStalled { get; private set; }

    /// <summary>YARP asked to abort the client connection (the worker side failed after the response started).</summary>
    public bool AbortRequested { get; private set; }

    public bool Started => _firstByteAt != 0;

    public bool ClientGone => _clientLifetime.RequestAborted.IsCancellationRequested;

    // IHttpRequestLifetimeFeature: YARP sees the client's cancellation or the gateway's timeouts.
    public CancellationToken RequestAborted
    {
        get => _linked.Token;
        set => throw new NotSupportedException();
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public void Abort()
    {
        if (ClientGone)
        {
            _clientLifetime.Abort();
            return;
        }

        // Not the client: the middleware ends the response properly instead of resetting the connection.
        AbortRequested = true;
    }

    /// <summary>Aborts the client connection for real (a broken response that cannot be ended cleanly).</summary>
    public void AbortClient() => _clientLifetime.Abort();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var forClient = Observe(buffer);
        if (!forClient.IsEmpty)
        {
            Volatile.Write(ref _writeBlockedSince, _time.GetTimestamp());
            try
            {
                await _inner.WriteAsync(forClient, cancellationToken);
            }
            finally
            {
                Volatile.Write(ref _writeBlockedSince, 0);
            }
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        var forClient = Observe(buffer.AsMemory(offset, count));
        if (!forClient.IsEmpty)
        {
            _inner.Write(forClient.Span);
        }
    }

    /// <summary>
    /// A flush leaves a held possible marker start where it is: only an SSE comment line can start with the marker's
    /// ':' (events are <c>data:</c> lines), so what is held is never model output, and the usage line never reaches the
    /// client however the worker's bytes were split and flushed.
    /// </summary>
    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        Volatile.Write(ref _writeBlockedSince, _time.GetTimestamp());
        try
        {
            await _inner.FlushAsync(cancellationToken);
        }
        finally
        {
            Volatile.Write(ref _writeBlockedSince, 0);
        }
    }

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _watchdog.Remove(this);
            _observation?.AttemptEnded(_firstByteAt, _lastWriteAt);
            _linked.Dispose();
            _timeout.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Records the write's timing and returns what the client gets: the data without the usage comment.</summary>
    private ReadOnlyMemory<byte> Observe(ReadOnlyMemory<byte> data)
    {
        if (data.IsEmpty)
        {
            return data;
        }

        var now = _time.GetTimestamp();
        if (_firstByteAt == 0)
        {
            _firstByteAt = now;
        }

        Volatile.Write(ref _lastWriteAt, now);
        return ScanForUsage(data);
    }

    /// <summary>
    /// Finds the <c>: x-gpufleet-usage ...</c> comment line (and the blank line that ends its event), which may be split
    /// across writes, and returns the data without them. Most writes hold no part of it and pass through as they are.
    /// </summary>
    private ReadOnlyMemory<byte> ScanForUsage(ReadOnlyMemory<byte> data)
    {
        var span = data.Span;
        List<byte>? kept = null; // allocated at the first byte that is not passed through
        for (var i = 0; i < span.Length; i++)
        {
            var b = span[i];
            var pass = Classify(b, out var releaseHeld);
            if (kept is null && (!pass || releaseHeld))
            {
                kept = [.. span[..i]];
            }

            if (kept is not null)
            {
                if (releaseHeld)
                {
                    kept.AddRange(_held);
                    _held.Clear();
                }

                if (pass)
                {
                    kept.Add(b);
                }
            }
        }

        return kept is null ? data : kept.ToArray();
    }

    /// <summary>One byte of the stream: true when it goes to the client now; <paramref name="releaseHeld"/> when the held bytes turned out not to be the marker.</summary>
    private bool Classify(byte b, out bool releaseHeld)
    {
        releaseHeld = false;
        if (_inUsageLine)
        {
            if (b == (byte)'\n')
            {
                _inUsageLine = false;
                _atLineStart = true;
                _dropBlankLine = true;
                if (_line.Count <= 128 && UsageReport.TryParse(Encoding.ASCII.GetString([.. _line]), out var report))
                {
                    _answer.Usage = report;
                }

                _line.Clear();
            }
            else if (_line.Count <= 128)
            {
                _line.Add(b); // a 129th byte marks the line as too long to be a report
            }

            return false;
        }

        if (_dropBlankLine)
        {
            _dropBlankLine = false;
            if (b == (byte)'\n')
            {
                return false; // the end of the comment's event
            }
        }

        // Only a line that starts with the marker is the report (an SSE comment); model text never starts a line with ':'.
        var wasMatching = _markerMatched > 0;
        _markerMatched = _markerMatched > 0 && b == UsageMarker[_markerMatched] ? _markerMatched + 1
            : _atLineStart && b == UsageMarker[0] ? 1 : 0;
        _atLineStart = b == (byte)'\n';
        if (_markerMatched == UsageMarker.Length)
        {
            _markerMatched = 0;
            _held.Clear();
            _inUsageLine = true;
            return false;
        }

        if (_markerMatched > 0)
        {
            // Still the marker so far (a new one cannot start inside it: it needs a line start).
            _held.Add(b);
            return false;
        }

        releaseHeld = wasMatching && _held.Count > 0; // the held bytes were another comment after all
        return true;
    }

    /// <summary>
    /// Called by the watchdog: cancels the forwarding once the current deadline has passed, and closes the connection of
    /// a client that has not taken a write for <see cref="ForwardingOptions.ClientStallTimeout"/>.
    /// </summary>
    internal void Check()
    {
        var now = _time.GetTimestamp();
        var blocked = Volatile.Read(ref _writeBlockedSince);
        if (blocked != 0 && now - blocked >= Ticks(_options.ClientStallTimeout) && !ClientGone)
        {
            ClientStalled = true;
            _clientLifetime.Abort(); // the client's abort reaches YARP, which ends the worker's request
        }

        if (TimedOut is not null)
        {
            return;
        }

        var last = Volatile.Read(ref _lastWriteAt);
        var (deadline, reason) = last == 0
            ? (_startedAt + Ticks(FirstTokenTimeout), "time_to_first_token_timeout")
            : (last + Ticks(_options.IdleTimeout), "inter_token_timeout");
        if (now >= deadline)
        {
            TimedOut = reason;
            try
            {
                _timeout.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The response finished meanwhile.
            }
        }
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);
}
