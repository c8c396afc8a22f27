using System.Diagnostics.Metrics;
using GpuFleet.Contracts;
using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Forwarding;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Observability;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.State;
using GpuFleet.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace GpuFleet.Gateway.Tests.Observability;

/// <summary>What one finished request records, on virtual time: latencies, tokens, retries, refusals, labels.</summary>
public sealed class RequestMetricsTests : IDisposable
{
    private readonly ManualTimeProvider _clock = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly WorkerLoadBoard _board;
    private readonly GatewayRedis _redis = new(new ConfigurationBuilder().Build(), NullLoggerFactory.Instance);
    private readonly GatewayMetrics _metrics;
    private readonly MeterListener _listener = new();
    private readonly List<(string Instrument, double Value, Dictionary<string, string?> Tags)> _measurements = [];

    public RequestMetricsTests()
    {
        _board = new WorkerLoadBoard(_clock);
        _board.Update("w1", new WorkerStatus { Name = "w1", Model = "served-model", Ready = true });
        var affinity = new AffinityIndex(_redis, new PrefixHasher(new byte[32], 64), new RoutingOptions(), _clock, NullLogger<AffinityIndex>.Instance);
        _metrics = new GatewayMetrics(_services.GetRequiredService<IMeterFactory>(), _board, _redis, affinity, _clock);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == GatewayMetrics.MeterName && instrument.Meter.Scope == _services.GetRequiredService<IMeterFactory>())
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    [Fact]
    public async Task A_streamed_request_records_its_first_token_time_per_output_token_duration_tokens_and_retry()
    {
        var failover = new FailoverFeature();
        failover.AddTried("w0"); // w0 failed before its first byte, w1 answered

        await RunAsync(async context =>
        {
            context.Features.Set(new InspectedRequestFeature { Request = new InspectedRequest { Model = "whatever-the-client-wrote", Stream = true }, PromptTokens = 100 });
            context.Features.Set(failover);
            context.Features.Set(new RouteChoiceFeature { Reason = RouteReasons.Affinity, PrefillTokens = 30 });
            context.Features.Set(new ChosenWorkerFeature("w1"));
            context.Features.Set(new WorkerAnswerFeature { Usage = new UsageReport(PromptTokens: 100, CompletionTokens: 11, CachedTokens: 70) });
            _clock.Advance(TimeSpan.FromSeconds(2));
            var firstByte = _clock.GetTimestamp();
            _clock.Advance(TimeSpan.FromSeconds(1));
            context.Features.Get<RequestObservation>()!.AttemptEnded(firstByte, _clock.GetTimestamp());
            _clock.Advance(TimeSpan.FromSeconds(5)); // after the last byte: not part of the duration
            await Task.CompletedTask;
        });

        var ttft = Single("gen_ai.server.time_to_first_token");
        Assert.Equal(2.0, ttft.Value, 6);
        Assert.Equal("served-model", ttft.Tags["model"]); // the serving worker's model: a bounded label
        Assert.Equal("affinity", ttft.Tags["route"]);
        Assert.Equal(0.1, Single("gen_ai.server.time_per_output_token").Value, 6); // 1 s over 10 tokens after the first
        var duration = Single("gen_ai.server.request.duration");
        Assert.Equal(3.0, duration.Value, 6);
        Assert.Equal("2xx", duration.Tags["status"]);
        Assert.Equal([100.0, 11.0], _measurements.Where(m => m.Instrument == "gen_ai.client.token.usage").Select(m => m.Value));
        Assert.Equal(70, Single("gpufleet_gateway_matched_prefix_tokens").Value);
        Assert.Equal("anonymous", _measurements.First(m => m.Instrument == "gpufleet_gateway_key_requests").Tags["key"]);
        Assert.DoesNotContain(_measurements, m => m.Instrument == "gpufleet_gateway_refusals");

        _listener.RecordObservableInstruments();
        Assert.Equal(1, _measurements.Single(m => m.Instrument == "gpufleet_gateway_retries" && m.Tags["worker"] == "w0").Value);
        Assert.Equal(0, _measurements.Single(m => m.Instrument == "gpufleet_gateway_retries" && m.Tags["worker"] == "w1").Value);
        Assert.Equal(1, Single("gpufleet_gateway_failovers").Value);
    }

    [Fact]
    public async Task A_request_that_is_no_generation_records_no_generation_latency()
    {
        await RunAsync(context =>
        {
            context.Features.Set(new ChosenWorkerFeature("w1")); // GET /v1/models, say: nothing inspected
            context.Features.Get<RequestObservation>()!.AttemptEnded(_clock.GetTimestamp(), _clock.GetTimestamp());
            return Task.CompletedTask;
        });

        Assert.DoesNotContain(_measurements, m => m.Instrument.StartsWith("gen_ai.", StringComparison.Ordinal));
        Assert.Single(_measurements, m => m.Instrument == "gpufleet_gateway_key_requests");
    }

    [Fact]
    public async Task A_refusal_is_counted_by_its_cause_and_has_no_first_token()
    {
        await RunAsync(context =>
        {
            context.Features.Set(new InspectedRequestFeature { Request = new InspectedRequest { Model = "m" } });
            return new GatewayError(429, "Every worker is at capacity.", "rate_limit_exceeded", "fleet_overloaded") { RetryAfterSeconds = 1 }.WriteAsync(context);
        });

        var refusal = Single("gpufleet_gateway_refusals");
        Assert.Equal("429", refusal.Tags["status"]);
        Assert.Equal("fleet_overloaded", refusal.Tags["cause"]);
        Assert.DoesNotContain(_measurements, m => m.Instrument == "gen_ai.server.time_to_first_token");
        Assert.Equal("none", Single("gen_ai.server.request.duration").Tags["model"]);
    }

    public void Dispose()
    {
        _listener.Dispose();
        _metrics.Dispose();
        _services.Dispose();
    }

    private async Task RunAsync(RequestDelegate inner)
    {
        var context = new DefaultHttpContext();
        context.Response.Body = new MemoryStream();
        await new RequestMetricsMiddleware(inner, _metrics, _clock).InvokeAsync(context);
    }

    private (string Instrument, double Value, Dictionary<string, string?> Tags) Single(string instrument) =>
        Assert.Single(_measurements, m => m.Instrument == instrument);

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            labels[tag.Key] = tag.Value?.ToString();
        }

        lock (_measurements)
        {
            _measurements.Add((instrument.Name, value, labels));
        }
    }
}
