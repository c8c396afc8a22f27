using System.Diagnostics.Metrics;
using GpuFleet.Contracts;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.State;

namespace GpuFleet.Gateway.Observability;

/// <summary>
/// The gateway's instruments (meter <see cref="MeterName"/>), exported at <c>/metrics</c> with the framework's own:
/// requests by worker, route reason and status class, tokens from the workers' usage reports, affinity lookup time,
/// lookups answered locally, whether Redis is degraded and which workers take new requests. No prompt, key or session
/// value ever becomes a label.
/// </summary>
internal sealed class GatewayMetrics : IDisposable
{
    public const string MeterName = "GpuFleet.Gateway";

    /// <summary>Seconds: an in-process lookup takes microseconds, a Redis round trip a fraction of a millisecond.</summary>
    private static readonly double[] LookupBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25];

    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _tokens;
    private readonly Histogram<double> _lookup;

    public GatewayMetrics(IMeterFactory meters, WorkerLoadBoard board, GatewayRedis redis, AffinityIndex affinity)
    {
        _meter = meters.Create(MeterName);
        _requests = _meter.CreateCounter<long>("gpufleet_gateway_requests", "{request}", "Requests forwarded, by worker, route reason and status class.");
        _tokens = _meter.CreateCounter<long>("gpufleet_gateway_tokens", "{token}", "Tokens reported by workers for forwarded requests (prompt, cached prompt, completion).");
        _lookup = _meter.CreateHistogram("gpufleet_gateway_affinity_lookup", "s", "Affinity lookup time per routed request (the Redis round trip when Redis is used).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LookupBuckets });
        _meter.CreateObservableCounter("gpufleet_gateway_affinity_local_fallbacks", () => affinity.Fallbacks, "{lookup}",
            "Affinity lookups answered from local state because Redis was down or slow.");
        _meter.CreateObservableGauge("gpufleet_gateway_redis_degraded", () => redis.Degraded ? 1 : 0, null,
            "1 while Redis is configured but unreachable (serving from local state).");
        _meter.CreateObservableGauge("gpufleet_gateway_worker_available",
            () => board.All.Select(load => new Measurement<int>(board.IsAvailable(load.Destination) ? 1 : 0, new KeyValuePair<string, object?>("worker", load.Destination))),
            null, "1 when the worker gets new requests (ready, not draining, fresh status).");
    }

    public void ObserveLookup(TimeSpan elapsed) => _lookup.Record(elapsed.TotalSeconds);

    public void ObserveRequest(string worker, string route, int status) =>
        _requests.Add(1, new("worker", worker), new("route", route), new("status", StatusClass(status)));

    public void ObserveUsage(string worker, UsageReport usage)
    {
        _tokens.Add(usage.PromptTokens, new("worker", worker), new("kind", "prompt"));
        _tokens.Add(usage.CachedTokens, new("worker", worker), new("kind", "cached"));
        _tokens.Add(usage.CompletionTokens, new("worker", worker), new("kind", "completion"));
    }

    public void Dispose() => _meter.Dispose();

    private static string StatusClass(int status) => status switch
    {
        < 200 => "1xx",
        < 300 => "2xx",
        < 400 => "3xx",
        < 500 => "4xx",
        _ => "5xx",
    };
}
