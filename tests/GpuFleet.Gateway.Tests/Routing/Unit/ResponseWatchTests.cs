using System.Text;
using GpuFleet.Contracts;
using GpuFleet.Gateway.Forwarding;
using GpuFleet.Gateway.Routing;
using GpuFleet.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>The stream every forwarded response is written through: the usage comment and the gateway's own timeouts, on virtual time.</summary>
public sealed class ResponseWatchTests : IDisposable
{
    private readonly ManualTimeProvider _clock = new();
    private readonly ForwardingOptions _options = new() { FirstTokenTimeout = TimeSpan.FromMinutes(5), IdleTimeout = TimeSpan.FromSeconds(60) };
    private readonly CancellationTokenSource _client = new();
    private readonly MemoryStream _body = new();
    private readonly DefaultHttpContext _context = new();

    public ResponseWatchTests()
    {
        _context.Response.Body = _body;
        _context.Features.Set<IHttpRequestLifetimeFeature>(new HttpRequestLifetimeFeature { RequestAborted = _client.Token });
    }

    public void Dispose()
    {
        _client.Dispose();
        _body.Dispose();
    }

    private WorkerAnswerFeature _answer = new();

    /// <summary>A watch over a fresh attempt: what it learns of the worker's answer (the usage) is in <see cref="_answer"/>.</summary>
    private ResponseWatch Watch()
    {
        _answer = new WorkerAnswerFeature();
        return new(_context, _answer, _options, _clock, new ResponseWatchdog(_clock));
    }

    private const string Stream = "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n"
        + "data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\n"
        + ": x-gpufleet-usage prompt=1234;completion=56;cached=1024\n\n"
        + "data: [DONE]\n\n";

    // What the client gets: the usage comment is for the gateway, and its event (the line and the blank line) is taken out.
    private const string ClientStream = "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n"
        + "data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\n"
        + "data: [DONE]\n\n";

    [Fact]
    public async Task The_usage_comment_is_found_in_one_write_and_everything_else_is_passed_through()
    {
        using var watch = Watch();
        await watch.WriteAsync(Encoding.UTF8.GetBytes(Stream));
        Assert.Equal(new UsageReport(1234, 56, 1024), _answer.Usage);
        Assert.Equal(ClientStream, Encoding.UTF8.GetString(_body.ToArray()));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(19)]
    public async Task The_usage_comment_is_found_when_split_across_writes(int chunk)
    {
        using var watch = Watch();
        var bytes = Encoding.UTF8.GetBytes(Stream);
        for (var offset = 0; offset < bytes.Length; offset += chunk)
        {
            var count = Math.Min(chunk, bytes.Length - offset);
            if (offset / chunk % 2 == 0)
            {
                await watch.WriteAsync(bytes.AsMemory(offset, count));
            }
            else
            {
                watch.Write(bytes, offset, count);
            }
        }

        Assert.Equal(new UsageReport(1234, 56, 1024), _answer.Usage);
        Assert.Equal(ClientStream, Encoding.UTF8.GetString(_body.ToArray()));
    }

    [Fact]
    public async Task The_usage_comment_is_found_at_every_split_point()
    {
        var bytes = Encoding.UTF8.GetBytes(Stream);
        var marker = Stream.IndexOf(": x-gpufleet-usage", StringComparison.Ordinal);
        for (var split = marker - 2; split < marker + 60; split++)
        {
            _body.SetLength(0);
            using var watch = Watch();
            await watch.WriteAsync(bytes.AsMemory(0, split));
            await watch.WriteAsync(bytes.AsMemory(split));
            Assert.Equal(new UsageReport(1234, 56, 1024), _answer.Usage);
            Assert.Equal(ClientStream, Encoding.UTF8.GetString(_body.ToArray()));
        }
    }

    [Fact]
    public async Task Near_misses_of_the_marker_do_not_hide_the_real_comment()
    {
        using var watch = Watch();
        await watch.WriteAsync(Encoding.ASCII.GetBytes(":: x-gpufleet-usag\n: x-gpufleet-usag: x\n: x-gpufleet-usage prompt=1;completion=2;cached=3\n"));
        Assert.Equal(new UsageReport(1, 2, 3), _answer.Usage);
        Assert.Equal(":: x-gpufleet-usag\n: x-gpufleet-usag: x\n", Encoding.ASCII.GetString(_body.ToArray()));
    }

    [Fact]
    public async Task A_flush_in_the_middle_of_the_usage_comment_never_lets_it_reach_the_client()
    {
        using var watch = Watch();
        await watch.WriteAsync(Encoding.ASCII.GetBytes("data: {}\n\n: x-gpu"));
        await watch.FlushAsync(); // the worker's bytes split and flushed (YARP flushes event streams after every read)
        await watch.WriteAsync(Encoding.ASCII.GetBytes("fleet-usage prompt=1;"));
        await watch.FlushAsync();
        await watch.WriteAsync(Encoding.ASCII.GetBytes("completion=2;cached=0\n\ndata: [DONE]\n\n"));

        Assert.Equal("data: {}\n\ndata: [DONE]\n\n", Encoding.ASCII.GetString(_body.ToArray()));
        Assert.Equal(new UsageReport(1, 2, 0), _answer.Usage);
    }

    [Fact]
    public async Task A_held_comment_start_that_is_another_comment_goes_out_with_the_rest_of_its_line()
    {
        using var watch = Watch();
        await watch.WriteAsync(Encoding.ASCII.GetBytes(": x-gpu"));
        await watch.FlushAsync();
        await watch.WriteAsync(Encoding.ASCII.GetBytes("s keep-alive\n\n"));
        Assert.Equal(": x-gpus keep-alive\n\n", Encoding.ASCII.GetString(_body.ToArray()));
        Assert.Null(_answer.Usage);
    }

    [Fact]
    public async Task A_stream_without_a_valid_usage_comment_has_no_usage()
    {
        using var watch = Watch();
        await watch.WriteAsync(Encoding.ASCII.GetBytes("data: {}\n\n: keep-alive\n\n: x-gpufleet-usage prompt=1;completion=oops\n\ndata: [DONE]\n\n"));
        Assert.Null(_answer.Usage);
        Assert.True(watch.Started);
    }

    [Fact]
    public async Task Model_output_that_quotes_the_usage_comment_is_not_taken_as_the_report()
    {
        using var watch = Watch();
        var injected = ": x-gpufleet-usage prompt=0;completion=0;cached=0;x=" + new string('0', 200);
        var text = "data: {\"choices\":[{\"delta\":{\"content\":\"" + injected + "\"}}]}\n\n";
        await watch.WriteAsync(Encoding.UTF8.GetBytes(text));
        Assert.Null(_answer.Usage);
        Assert.Equal(text, Encoding.UTF8.GetString(_body.ToArray()));
    }

    [Fact]
    public void Nothing_from_the_worker_within_the_first_token_timeout_times_out_and_cancels_the_forwarding()
    {
        using var watch = Watch();
        var aborted = watch.RequestAborted;
        _clock.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromTicks(1));
        watch.Check();
        Assert.Null(watch.TimedOut);
        Assert.False(aborted.IsCancellationRequested);

        _clock.Advance(TimeSpan.FromTicks(1));
        watch.Check();
        Assert.Equal("time_to_first_token_timeout", watch.TimedOut);
        Assert.True(aborted.IsCancellationRequested);
        Assert.False(watch.ClientGone);
        Assert.False(watch.Started);
    }

    [Fact]
    public async Task Silence_after_the_first_byte_times_out_as_inter_token_and_writes_reset_the_clock()
    {
        using var watch = Watch();
        _clock.Advance(TimeSpan.FromMinutes(4));
        await watch.WriteAsync("data: {}\n\n"u8.ToArray());
        Assert.True(watch.Started);

        // The first-token deadline no longer applies once something was written.
        _clock.Advance(TimeSpan.FromSeconds(59));
        watch.Check();
        await watch.WriteAsync("data: {}\n\n"u8.ToArray());
        _clock.Advance(TimeSpan.FromSeconds(59));
        watch.Check();
        Assert.Null(watch.TimedOut);
        await watch.WriteAsync(ReadOnlyMemory<byte>.Empty); // an empty write is not a sign of life
        _clock.Advance(TimeSpan.FromSeconds(1));
        watch.Check();
        Assert.Equal("inter_token_timeout", watch.TimedOut);
        Assert.True(watch.RequestAborted.IsCancellationRequested);

        // The first reason sticks.
        _clock.Advance(TimeSpan.FromMinutes(10));
        watch.Check();
        Assert.Equal("inter_token_timeout", watch.TimedOut);
    }

    [Fact]
    public void The_clients_cancellation_reaches_the_forwarding_but_is_not_a_timeout()
    {
        using var watch = Watch();
        _client.Cancel();
        Assert.True(watch.RequestAborted.IsCancellationRequested);
        Assert.True(watch.ClientGone);
        watch.Check();
        Assert.Null(watch.TimedOut);
    }

    [Fact]
    public async Task A_client_that_takes_no_write_for_the_stall_timeout_has_its_connection_closed()
    {
        var lifetime = new AbortRecordingLifetime();
        _context.Features.Set<IHttpRequestLifetimeFeature>(lifetime);
        var client = new NeverReadStream();
        _context.Response.Body = client;
        using var watch = Watch();

        var write = watch.WriteAsync(Encoding.ASCII.GetBytes("data: {}\n\n")).AsTask();
        _clock.Advance(_options.ClientStallTimeout - TimeSpan.FromSeconds(1));
        watch.Check();
        Assert.Equal(0, lifetime.Aborts);

        _clock.Advance(TimeSpan.FromSeconds(1));
        watch.Check();
        Assert.Equal(1, lifetime.Aborts);
        Assert.True(watch.ClientStalled);
        client.Release();
        await write;

        // A write the client takes at once never counts, however long the stream then stays quiet.
        _clock.Advance(_options.ClientStallTimeout * 2);
        watch.Check();
        Assert.Equal(1, lifetime.Aborts);
    }

    private sealed class AbortRecordingLifetime : IHttpRequestLifetimeFeature
    {
        public int Aborts { get; private set; }

        public CancellationToken RequestAborted { get; set; }

        public void Abort() => Aborts++;
    }

    /// <summary>A client connection whose writes block until released, as a socket whose peer does not read.</summary>
    private sealed class NeverReadStream : MemoryStream
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _released.TrySetResult();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => await _released.Task;
    }

    [Fact]
    public void An_abort_while_the_client_is_still_there_is_only_recorded()
    {
        using var watch = Watch();
        watch.Abort();
        Assert.True(watch.AbortRequested);
        Assert.False(watch.RequestAborted.IsCancellationRequested);
    }

    [Fact]
    public void Checking_a_finished_response_does_not_throw()
    {
        var watch = Watch();
        watch.Dispose();
        _clock.Advance(TimeSpan.FromHours(1));
        watch.Check();
    }
}
