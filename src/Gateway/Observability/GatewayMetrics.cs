using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.State;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// The gateway's Prometheus metrics (text exposition at <c>/metrics</c>): requests by worker, route reason and status
/// class, tokens from the workers' usage reports, routing decision time, affinity lookups answered locally, and
/// whether Redis is degraded. No prompt, key or session value ever becomes a label.
/// </summary>
public static class GatewayMetrics
{
    private static readonly double[] LookupBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25];
    private static readonly ConcurrentDictionary<(string Worker, string Route, string Status), long> Requests = new();
    private static readonly ConcurrentDictionary<(string Worker, string Kind), long> Tokens = new();
    private static readonly long[] LookupCounts = new long[LookupBuckets.Length + 1];
    private static long _lookupTicks;
    private static long _lookupCount;

    public static void ObserveLookup(TimeSpan elapsed)
    {
        var seconds = elapsed.TotalSeconds;
        var bucket = Array.FindIndex(LookupBuckets, b => seconds <= b);
        Interlocked.Increment(ref LookupCounts[bucket < 0 ? LookupBuckets.Length : bucket]);
        Interlocked.Add(ref _lookupTicks, elapsed.Ticks);
        Interlocked.Increment(ref _lookupCount);
    }

    public static void ObserveRequest(string worker, string route, int status) =>
        Requests.AddOrUpdate((worker, route, (status / 100).ToString(CultureInfo.InvariantCulture) + "xx"), 1, (_, n) => n + 1);

    public static void ObserveUsage(string worker, GpuFleet.Contracts.UsageReport usage)
    {
        Tokens.AddOrUpdate((worker, "prompt"), usage.PromptTokens, (_, n) => n + usage.PromptTokens);
        Tokens.AddOrUpdate((worker, "cached"), usage.CachedTokens, (_, n) => n + usage.CachedTokens);
        Tokens.AddOrUpdate((worker, "completion"), usage.CompletionTokens, (_, n) => n + usage.CompletionTokens);
    }

    public static Task WriteAsync(HttpContext http, WorkerLoadBoard board, GatewayRedis redis, AffinityIndex affinity)
    {
        ArgumentNullException.ThrowIfNull(http);
        var text = new StringBuilder();
        text.AppendLine("# HELP gpufleet_gateway_requests_total Requests forwarded, by worker, route reason and status class.");
        text.AppendLine("# TYPE gpufleet_gateway_requests_total counter");
        foreach (var ((worker, route, status), n) in Requests.OrderBy(r => r.Key))
        {
            text.Append(CultureInfo.InvariantCulture, $"gpufleet_gateway_requests_total{{worker=\"{Escape(worker)}\",route=\"{route}\",status=\"{status}\"}} {n}\n");
        }

        text.AppendLine("# HELP gpufleet_gateway_tokens_total Tokens reported by workers for forwarded requests (prompt, cached prompt, completion).");
        text.AppendLine("# TYPE gpufleet_gateway_tokens_total counter");
        foreach (var ((worker, kind), n) in Tokens.OrderBy(t => t.Key))
        {
            text.Append(CultureInfo.InvariantCulture, $"gpufleet_gateway_tokens_total{{worker=\"{Escape(worker)}\",kind=\"{kind}\"}} {n}\n");
        }

        text.AppendLine("# HELP gpufleet_gateway_affinity_lookup_seconds Affinity lookup time per routed request (the Redis round trip when Redis is used).");
        text.AppendLine("# TYPE gpufleet_gateway_affinity_lookup_seconds histogram");
        long cumulative = 0;
        for (var i = 0; i < LookupBuckets.Length; i++)
        {
            cumulative += Interlocked.Read(ref LookupCounts[i]);
            text.Append(CultureInfo.InvariantCulture, $"gpufleet_gateway_affinity_lookup_seconds_bucket{{le=\"{LookupBuckets[i]}\"}} {cumulative}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"gpufleet_gateway_affinity_lookup_seconds_bucket{{le=\"+Inf\"}} {Interlocked.Read(ref _lookupCount)}\n");
        text.Append(CultureInfo.InvariantCulture, $"gpufleet_gateway_affinity_lookup_seconds_sum {TimeSpan.FromTicks(Interlocked.Read(ref _lookupTicks)).TotalSeconds}\n");
        text.Append(CultureInfo.InvariantCulture, $"gpufleet_gateway_affinity_lookup_seconds_count {Interlocked.Read(ref _lookupCount)}\n");
        text.AppendLine("# HELP gpufleet_gateway_affinity_local_fallbacks_total Affinity lookups answered from local state because Redis was down or slow.");
        text.AppendLine("# TYPE gpufleet_gateway_affinity_local_fallbacks_total counter");
        text.Append(CultureInfo.InvariantCulture, $"gpufleet_gateway_affinity_local_fallbacks_total {affinity.Fallbacks}\n");
        text.AppendLine("# HELP gpufleet_gateway_redis_degraded 1 while Redis is configured but unreachable (serving from local state).");
        text.AppendLine("# TYPE gpufleet_gateway_redis_degraded gauge");
        text.Append(CultureInfo.InvariantCulture, $"gpufleet_gateway_redis_degraded {(redis.Degraded ? 1 : 0)}\n");
        text.AppendLine("# HELP gpufleet_gateway_worker_available 1 when the worker gets new requests (ready, not draining, fresh status).");
        text.AppendLine("# TYPE gpufleet_gateway_worker_available gauge");
        foreach (var load in board.All.OrderBy(l => l.Destination, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"gpufleet_gateway_worker_available{{worker=\"{Escape(load.Destination)}\"}} {(board.IsAvailable(load.Destination) ? 1 : 0)}\n");
        }

        http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        return http.Response.WriteAsync(text.ToString(), http.RequestAborted);
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
}
