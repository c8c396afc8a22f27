using System.Diagnostics.Metrics;
using System.Globalization;
using GpuFleet.Contracts;
using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Auth;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.State;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Observability;

/// <summary>
/// The gateway's instruments (meter <see cref="MeterName"/>), exported at <c>/metrics</c> with the framework's own:
/// what clients experience (time to first token, time per output token and request duration under the OpenTelemetry
/// GenAI names, token usage), requests by worker, route reason and status class, tokens from the workers' usage
/// reports, matched prefix tokens, retries, failovers, capacity waits, refusals by
/// cause, per-key usage, affinity lookup time, lookups answered locally, whether Redis is degraded and which workers
/// take new requests. Every label is bounded (docs/observability.md lists them): workers and models come from the
/// fleet, keys by name from the keys file, causes from the gateway's own error codes. No prompt, key secret or
/// session value ever becomes a label. Routing decisions and ejections are recorded by <see cref="RoutingMetrics"/>.
/// </summary>
internal sealed class GatewayMetrics : IDisposable
{
    public const string MeterName = "GpuFleet.Gateway";

    /// <summary>The gRPC generation method's path: its calls are generations like the OpenAI ones.</summary>
    private static readonly string GrpcGeneratePath = $"/{Inference.Descriptor.FullName}/{nameof(Inference.InferenceClient.Generate)}";

    /// <summary>Seconds: an in-process lookup takes microseconds, a Redis round trip a fraction of a millisecond.</summary>
    private static readonly double[] LookupBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25];

    /// <summary>
    /// Seconds to the first token: a cached short prompt answers in tens of milliseconds, a long agent prompt
    /// prefilled from scratch takes tens of seconds to minutes, and both must land in a finite bucket.
    /// </summary>
    internal static readonly double[] FirstTokenBuckets =
        [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300];

    /// <summary>Seconds between output tokens: tens of milliseconds on a GPU, up to a second on a loaded CPU.</summary>
    internal static readonly double[] OutputTokenBuckets =
        [0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5];

    /// <summary>Seconds for a whole request: a streamed agent turn may run for minutes.</summary>
    internal static readonly double[] RequestBuckets =
        [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300, 600, 1200];

    /// <summary>Tokens: the GenAI semantic conventions' boundaries (powers of four).</summary>
    internal static readonly long[] TokenBuckets =
        [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576];

    /// <summary>Seconds waited for a free slot somewhere in the fleet before forwarding (bounded by the queue wait).</summary>
    internal static readonly double[] CapacityWaitBuckets = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60];

    private readonly Meter _meter;
    private readonly WorkerLoadBoard _board;
    private readonly TimeProvider _time;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _tokens;
    private readonly Histogram<double> _lookup;
    private readonly Histogram<double> _firstToken;
    private readonly Histogram<double> _perOutputToken;
    private readonly Histogram<double> _duration;
    private readonly Histogram<long> _tokenUsage;
    private readonly Histogram<long> _matchedPrefix;
    private readonly PerWorkerCounts _retries;
    private long _failovers;
    private readonly Histogram<double> _capacityWait;
    private readonly Counter<long> _refusals;
    private readonly Counter<long> _keyRequests;
    private readonly Counter<long> _keyTokens;

    public GatewayMetrics(IMeterFactory meters, WorkerLoadBoard board, GatewayRedis redis, AffinityIndex affinity, TimeProvider time)
    {
        _board = board;
        _time = time;
        _meter = meters.Create(MeterName);
        _firstToken = _meter.CreateHistogram("gen_ai.server.time_to_first_token", "s",
            "Time from the request entering the gateway to the first response byte to the client, by model and route reason.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = FirstTokenBuckets });
        _perOutputToken = _meter.CreateHistogram("gen_ai.server.time_per_output_token", "s",
            "Mean time per output token after the first (streamed responses), by model and route reason.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = OutputTokenBuckets });
        _duration = _meter.CreateHistogram("gen_ai.server.request.duration", "s",
            "Time from the request entering the gateway to its last response byte, by model, route reason and status class.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = RequestBuckets });
        _tokenUsage = _meter.CreateHistogram<long>("gen_ai.client.token.usage", "{token}",
            "Tokens per request from the workers' usage reports, by model and type (input = prompt, output = completion).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = TokenBuckets });
        _matchedPrefix = _meter.CreateHistogram<long>("gpufleet_gateway_matched_prefix_tokens", "{token}",
            "Estimated prompt tokens the chosen worker already held (the affinity match), per routed request.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [0, 16, 64, 256, 1024, 4096, 16384, 65536, 262144] });
        _retries = new PerWorkerCounts(board);
        _meter.CreateObservableCounter("gpufleet_gateway_retries", _retries.Observe, "{attempt}",
            "Attempts that failed before the first byte and were retried on another worker, by the worker that failed.");
        // Observed rather than added to, so that it is exported from the start, at 0 (see PerWorkerCounts).
        _meter.CreateObservableCounter("gpufleet_gateway_failovers", () => Interlocked.Read(ref _failovers), "{request}",
            "Requests answered successfully by a worker after another had failed them.");
        _capacityWait = _meter.CreateHistogram("gpufleet_gateway_capacity_wait", "s",
            "Time a request waited at the gateway for room while every worker was full.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = CapacityWaitBuckets });
        _refusals = _meter.CreateCounter<long>("gpufleet_gateway_refusals", "{response}",
            "Error responses (status 400 and above) by status and cause: the gateway's error code, or worker when a worker's own answer passed through.");
        _keyRequests = _meter.CreateCounter<long>("gpufleet_gateway_key_requests", "{request}",
            "Requests per API key name (from the keys file; anonymous without keys) and status class.");
        _keyTokens = _meter.CreateCounter<long>("gpufleet_gateway_key_tokens", "{token}",
            "Tokens per API key name, by kind (prompt, cached, completion).");
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

    /// <summary>Times the wait for capacity until disposed (a refusal after the wait still counts).</summary>
    public CapacityWaitScope TimeCapacityWait() => new(this, _time.GetTimestamp());

    /// <summary>Records a finished proxied request: latencies, token usage, retries, refusals and the key's usage.</summary>
    public void ObserveCompleted(HttpContext context, RequestObservation observation, bool failed)
    {
        var status = failed ? StatusCodes.Status500InternalServerError : context.Response.StatusCode;
        var inspected = context.Features.Get<InspectedRequestFeature>();
        var destination = context.Features.Get<ChosenWorkerFeature>()?.Destination;
        var choice = context.Features.Get<RouteChoiceFeature>();
        var reported = context.Features.Get<WorkerAnswerFeature>()?.Usage;
        var model = Model(destination);
        var route = choice?.Reason ?? "none";
        var end = observation.LastWriteAt != 0 ? observation.LastWriteAt : _time.GetTimestamp();
        var modelTag = new KeyValuePair<string, object?>("model", model);
        var routeTag = new KeyValuePair<string, object?>("route", route);
        // Latencies of generations only: a model list or health probe through the proxy is no first token.
        var generation = inspected?.Request is not null || IsGrpcGenerate(context.Request);
        if (generation)
        {
            _duration.Record(_time.GetElapsedTime(observation.StartedAt, end).TotalSeconds, modelTag, routeTag, new("status", StatusClass(status)));
        }

        var usage = reported ?? default;
        var hasUsage = reported is not null;
        if (generation && observation.FirstByteAt != 0 && status < 400)
        {
            _firstToken.Record(_time.GetElapsedTime(observation.StartedAt, observation.FirstByteAt).TotalSeconds, modelTag, routeTag);
            // Only a stream shows the pace of generation: a whole JSON body goes out in one write.
            if (inspected?.Request is { Stream: true } && usage.CompletionTokens > 1)
            {
                var perToken = _time.GetElapsedTime(observation.FirstByteAt, observation.LastWriteAt).TotalSeconds / (usage.CompletionTokens - 1);
                _perOutputToken.Record(perToken, modelTag, routeTag);
            }
        }

        if (hasUsage)
        {
            _tokenUsage.Record(usage.PromptTokens, modelTag, new("type", "input"));
            _tokenUsage.Record(usage.CompletionTokens, modelTag, new("type", "output"));
        }

        if (inspected is { Request: not null } && destination is not null)
        {
            _matchedPrefix.Record(Math.Max(0, inspected.PromptTokens - (choice?.PrefillTokens ?? 0)));
        }

        if (context.Features.Get<FailoverFeature>() is { } failover)
        {
            foreach (var tried in failover.Tried)
            {
                _retries.Increment(tried);
            }

            if (failover.Tried.Count > 0 && status is >= 200 and < 300)
            {
                Interlocked.Increment(ref _failovers);
            }
        }

        if (status >= 400)
        {
            _refusals.Add(1, new("status", status.ToString(CultureInfo.InvariantCulture)), new("cause", observation.ErrorCode ?? "worker"));
        }

        var key = new KeyValuePair<string, object?>("key", context.Features.Get<ApiKeyFeature>()?.Key.Name ?? "anonymous");
        _keyRequests.Add(1, key, new("status", StatusClass(status)));
        if (hasUsage)
        {
            _keyTokens.Add(usage.PromptTokens, key, new("kind", "prompt"));
            _keyTokens.Add(usage.CachedTokens, key, new("kind", "cached"));
            _keyTokens.Add(usage.CompletionTokens, key, new("kind", "completion"));
        }
    }

    public void ObserveRequest(string worker, string route, int status) =>
        _requests.Add(1, new("worker", worker), new("route", route), new("status", StatusClass(status)));

    public void ObserveUsage(string worker, UsageReport usage)
    {
        _tokens.Add(usage.PromptTokens, new("worker", worker), new("kind", "prompt"));
        _tokens.Add(usage.CachedTokens, new("worker", worker), new("kind", "cached"));
        _tokens.Add(usage.CompletionTokens, new("worker", worker), new("kind", "completion"));
    }

    public void Dispose() => _meter.Dispose();

    /// <summary>The model the serving worker reports: bounded by the fleet, unlike the request's own model field.</summary>
    private string Model(string? destination) =>
        destination is not null && _board.Get(destination)?.Status?.Model is { Length: > 0 } model ? model : "none";

    private static bool IsGrpcGenerate(HttpRequest request) =>
        request.Path.Equals(GrpcGeneratePath, StringComparison.Ordinal);

    /// <summary>Measures one capacity wait; a struct so the common no-wait case allocates nothing.</summary>
    internal readonly struct CapacityWaitScope(GatewayMetrics metrics, long startedAt) : IDisposable
    {
        public void Dispose() => metrics._capacityWait.Record(metrics._time.GetElapsedTime(startedAt).TotalSeconds);
    }

    private static string StatusClass(int status) => status switch
    {
        < 200 => "1xx",
        < 300 => "2xx",
        < 400 => "3xx",
        < 500 => "4xx",
        _ => "5xx",
    };
}
