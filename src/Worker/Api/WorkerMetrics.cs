using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Worker.Api;

/// <summary>
/// <c>/metrics</c> in the Prometheus text exposition format (version 0.0.4): the engine's queue, slots,
/// memory, cache, throughput and totals. The full metric set comes with the observability work.
/// </summary>
internal static class WorkerMetrics
{
    public static Task WriteAsync(HttpContext http, WorkerApi api)
    {
        var text = new StringBuilder();
        var model = Escape(api.ModelId);
        var worker = Escape(api.Options.Name);
        var labels = $"worker=\"{worker}\",model=\"{model}\"";
        var described = new HashSet<string>(StringComparer.Ordinal);
        void Metric(string name, string type, string help, double value, string extraLabels = "")
        {
            // HELP and TYPE once per metric family, before its first sample.
            if (described.Add(name))
            {
                text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} {type}\n");
            }

            text.Append(CultureInfo.InvariantCulture, $"{name}{{{labels}{extraLabels}}} {value.ToString("R", CultureInfo.InvariantCulture)}\n");
        }

        Metric("gpufleet_worker_draining", "gauge", "1 while the worker drains before exit.", api.Lifecycle.Draining ? 1 : 0);
        Metric("gpufleet_worker_simulated", "gauge", "1 when the simulated engine answers (--simulate): no model generates the text.", api.Simulated ? 1 : 0);
        Metric("gpufleet_worker_requests_in_flight", "gauge", "API requests being served.", api.Lifecycle.InFlight);
        if (api.TryGetStatus() is { } s)
        {
            Metric("gpufleet_worker_queue_depth", "gauge", "Requests waiting for a slot.", s.QueueDepth);
            Metric("gpufleet_worker_queue_capacity", "gauge", "Requests that may wait before new ones are refused.", s.QueueCapacity);
            Metric("gpufleet_worker_slots", "gauge", "Sequence slots by state.", s.RunningSlots, ",state=\"running\"");
            Metric("gpufleet_worker_slots", "gauge", "Sequence slots by state.", s.FreeSlots, ",state=\"free\"");
            Metric("gpufleet_worker_kv_bytes", "gauge", "KV cache and recurrent state bytes.", s.KvBytesUsed, ",kind=\"used\"");
            Metric("gpufleet_worker_kv_bytes", "gauge", "KV cache and recurrent state bytes.", s.KvBytesTotal, ",kind=\"total\"");
            Metric("gpufleet_worker_host_cache_bytes", "gauge", "Bytes of prefix snapshots in host RAM.", s.HostCacheBytes);
            Metric("gpufleet_worker_host_cache_entries", "gauge", "Prefix snapshots in host RAM.", s.HostCacheEntries);
            Metric("gpufleet_worker_prefill_tokens_per_second", "gauge", "Prompt tokens per second over the last 10 s.", s.PrefillTokensPerSecond);
            Metric("gpufleet_worker_decode_tokens_per_second", "gauge", "Generated tokens per second over the last 10 s.", s.DecodeTokensPerSecond);
            Metric("gpufleet_worker_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.", s.PromptTokensTotal);
            Metric("gpufleet_worker_reused_prompt_tokens_total", "counter", "Prompt tokens served from the prefix cache.", s.ReusedPromptTokensTotal);
            Metric("gpufleet_worker_generated_tokens_total", "counter", "Tokens generated.", s.GeneratedTokensTotal);
            Metric("gpufleet_worker_requests_total", "counter", "Requests by outcome.", s.RequestsCompleted, ",outcome=\"completed\"");
            Metric("gpufleet_worker_requests_total", "counter", "Requests by outcome.", s.RequestsFailed, ",outcome=\"failed\"");
            Metric("gpufleet_worker_requests_total", "counter", "Requests by outcome.", s.RequestsRejected, ",outcome=\"rejected\"");
        }

        http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        return http.Response.WriteAsync(text.ToString(), http.RequestAborted);
    }

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
