using GpuFleet.Gateway.Forwarding;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Tests.Observability;
using GpuFleet.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Tests.Forwarding;

/// <summary>The stage after load balancing: the attempt's first-token timeout follows the prompt's prefill on the chosen worker.</summary>
public sealed class ChosenWorkerMiddlewareTests : IDisposable
{
    private readonly ManualTimeProvider _clock = new();
    private readonly ForwardingOptions _options = new() { FirstTokenTimeout = TimeSpan.FromMinutes(5), FirstTokenPrefillFactor = 2 };
    private readonly WorkerLoadBoard _board;
    private readonly WorkerTraffic _traffic;
    private readonly DefaultHttpContext _context = new();
    private readonly CancellationTokenSource _client = new();

    public ChosenWorkerMiddlewareTests()
    {
        _board = new WorkerLoadBoard(_clock);
        _traffic = new WorkerTraffic(_clock);
        _context.Response.Body = new MemoryStream();
        _context.Features.Set<IHttpRequestLifetimeFeature>(new HttpRequestLifetimeFeature { RequestAborted = _client.Token });
        _context.Features.Set<IReverseProxyFeature>(new ProxyFeature { AvailableDestinations = [new DestinationState("w1")] });
    }

    public void Dispose()
    {
        _client.Dispose();
        _context.Response.Body.Dispose();
    }

    private async Task<ResponseWatch> RunAsync(int prefillTokens)
    {
        _context.Features.Set(new InspectedRequestFeature { PromptTokens = prefillTokens });
        _context.Features.Set(new RouteChoiceFeature { Reason = RouteReasons.Load, PrefillTokens = prefillTokens });
        var watch = new ResponseWatch(_context, new WorkerAnswerFeature(), _options, _clock, new ResponseWatchdog(_clock));
        _context.Features.Set(watch);
        var middleware = new ChosenWorkerMiddleware(_ => Task.CompletedTask, _traffic, new FirstTokenTimeouts(_options, _board, _traffic), TestMeters.Routing());
        await middleware.InvokeAsync(_context);
        Assert.Equal("w1", _context.Features.Get<ChosenWorkerFeature>()?.Destination);
        return watch;
    }

    [Fact]
    public async Task A_long_prompt_gets_longer_than_the_base_timeout_to_its_first_token()
    {
        FirstTokenTimeoutsTests.Report(_board, "w1", 500);
        using var watch = await RunAsync(60_000); // 120 s at 500 tokens/s, 240 s with the factor
        Assert.Equal(TimeSpan.FromSeconds(300 + 240), watch.FirstTokenTimeout);

        _clock.Advance(TimeSpan.FromSeconds(300 + 239));
        watch.Check();
        Assert.Null(watch.TimedOut);
        _clock.Advance(TimeSpan.FromSeconds(1));
        watch.Check();
        Assert.Equal("time_to_first_token_timeout", watch.TimedOut);
    }

    [Fact]
    public async Task A_short_prompt_or_a_worker_without_a_measured_rate_keeps_about_the_base_timeout()
    {
        FirstTokenTimeoutsTests.Report(_board, "w1", 0);
        using (var unmeasured = await RunAsync(60_000))
        {
            Assert.Equal(TimeSpan.FromMinutes(5), unmeasured.FirstTokenTimeout);
        }

        FirstTokenTimeoutsTests.Report(_board, "w1", 500);
        using var small = await RunAsync(50);
        Assert.Equal(TimeSpan.FromSeconds(300.2), small.FirstTokenTimeout);
        _clock.Advance(TimeSpan.FromSeconds(300.2));
        small.Check();
        Assert.Equal("time_to_first_token_timeout", small.TimedOut);
    }

    private sealed class ProxyFeature : IReverseProxyFeature
    {
        public RouteModel Route => throw new NotSupportedException();

        public ClusterModel Cluster => throw new NotSupportedException();

        public IReadOnlyList<DestinationState> AllDestinations => AvailableDestinations;

        public IReadOnlyList<DestinationState> AvailableDestinations { get; set; } = [];

        public DestinationState? ProxiedDestination { get; set; }
    }
}
