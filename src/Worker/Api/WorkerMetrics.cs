using System.Diagnostics.Metrics;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Api;

/// <summary>
/// The worker's instruments (meter <see cref="MeterName"/>), exported at <c>/metrics</c> with the framework's own:
/// the engine's queue, slots, memory, cache, throughput and totals, read from its status at each collection, the
/// devices' memory and the model's load time. Every series carries the worker's name and model (the scheduler's
/// per-step histograms, <see cref="EngineMetrics"/>, are told apart by Prometheus' instance label); the other labels
/// take a handful of fixed values, or a device name; no request text ever becomes a label.
/// </summary>
internal sealed class WorkerMetrics : IDisposable
{
    public const string MeterName = "GpuFleet.Worker";

    private readonly Meter _meter;
    private readonly WorkerApi _api;
    private readonly KeyValuePair<string, object?>[] _identity;

    public WorkerMetrics(IMeterFactory meters, WorkerApi api, EngineHost host)
    {
        _api = api;
        _identity = [new("worker", api.Options.Name), new("model", api.ModelId)];
        _meter = meters.Create(MeterName);

        Gauge("gpufleet_worker_draining", null, "1 while the worker drains before exit.", () => api.Lifecycle.Draining ? 1 : 0);
        Gauge("gpufleet_worker_simulated", null, "1 when the simulated engine answers (--simulate): no model generates the text.", () => api.Simulated ? 1 : 0);
        Gauge("gpufleet_worker_requests_in_flight", "{request}", "API requests being served.", () => api.Lifecycle.InFlight);
        Gauge("gpufleet_worker_queue_depth", "{request}", "Requests waiting for a slot.", s => s.QueueDepth);
        Gauge("gpufleet_worker_queue_capacity", "{request}", "Requests that may wait before new ones are refused.", s => s.QueueCapacity);
        Gauge("gpufleet_worker_slots", "{slot}", "Sequence slots by state.", ("state", "running", s => s.RunningSlots), ("state", "free", s => s.FreeSlots));
        Gauge("gpufleet_worker_kv_bytes", "By", "KV cache and recurrent state bytes.", ("kind", "used", s => s.KvBytesUsed), ("kind", "total", s => s.KvBytesTotal));
        Gauge("gpufleet_worker_kv_tokens", "{token}", "Tokens the KV/state pool holds, has promised to running requests (admission waits while the next prompt does not fit beside them) and can hold.",
            ("kind", "used", s => s.KvTokensUsed), ("kind", "reserved", s => s.ReservedKvTokens), ("kind", "total", s => s.KvTokensTotal));
        Gauge("gpufleet_worker_context_tokens", "{token}", "The most tokens (prompt and completion) one request can hold.", s => s.ContextPerRequest);
        Gauge("gpufleet_worker_pending_prefill_tokens", "{token}", "Prompt tokens admitted or queued but not yet prefilled.", s => s.PendingPrefillTokens);
        Gauge("gpufleet_worker_host_cache_bytes", "By", "Bytes of prefix snapshots in host RAM.", s => s.HostCacheBytes);
        Gauge("gpufleet_worker_host_cache_capacity_bytes", "By", "The host-RAM budget for prefix snapshots (0: no snapshots).", s => s.HostCacheCapacityBytes);
        Gauge("gpufleet_worker_host_cache_entries", "{snapshot}", "Prefix snapshots in host RAM.", s => s.HostCacheEntries);
        Gauge("gpufleet_worker_prefill_tokens_per_second", "{token}/s", "Prompt tokens per second over the last 10 s.", s => s.PrefillTokensPerSecond);
        Gauge("gpufleet_worker_decode_tokens_per_second", "{token}/s", "Generated tokens per second over the last 10 s.", s => s.DecodeTokensPerSecond);
        Counter("gpufleet_worker_prompt_tokens", "{token}", "Prompt tokens of admitted requests.", ("", "", s => s.PromptTokensTotal));
        Counter("gpufleet_worker_reused_prompt_tokens", "{token}", "Prompt tokens served from the prefix cache.", ("", "", s => s.ReusedPromptTokensTotal));
        Counter("gpufleet_worker_host_cache_evictions", "{snapshot}", "Prefix snapshots dropped to stay within the host-RAM budget.", ("", "", s => s.HostCacheEvictions));
        Counter("gpufleet_worker_generated_tokens", "{token}", "Tokens generated.", ("", "", s => s.GeneratedTokensTotal));
        Counter("gpufleet_worker_requests", "{request}", "Requests by outcome.",
            ("outcome", "completed", s => s.RequestsCompleted), ("outcome", "failed", s => s.RequestsFailed), ("outcome", "rejected", s => s.RequestsRejected),
            ("outcome", "cancelled", s => s.RequestsCancelled));
        _meter.CreateObservableGauge<double>("gpufleet_worker_model_load", () => host.ModelLoadTime is { } load ? [new Measurement<double>(load.TotalSeconds, _identity)] : [],
            "s", "Seconds the model took to load and the engine to start (no sample until it has).");
        _meter.CreateObservableGauge("gpufleet_worker_device_memory", () => DeviceMemory(host), "By",
            "Memory of each ggml backend device (GPU, or the host for the CPU device), free and total, as the backend reports it now.");
    }

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<long>> DeviceMemory(EngineHost host)
    {
        if (host.Backend is null)
        {
            return [];
        }

        return LlamaBackend.CurrentDevices().SelectMany(d => new[]
        {
            new Measurement<long>(d.FreeBytes, [.. _identity, new("device", d.Name), new("type", d.Type), new("kind", "free")]),
            new Measurement<long>(d.TotalBytes, [.. _identity, new("device", d.Name), new("type", d.Type), new("kind", "total")]),
        });
    }

    /// <summary>A gauge of the worker itself, observed even while the model loads.</summary>
    private void Gauge(string name, string? unit, string description, Func<double> read) =>
        _meter.CreateObservableGauge(name, () => new Measurement<double>(read(), _identity), unit, description);

    /// <summary>A gauge of the engine's status: no sample while the model loads (there is no status yet).</summary>
    private void Gauge(string name, string unit, string description, Func<EngineStatus, double> read) =>
        Gauge(name, unit, description, ("", "", read));

    private void Gauge(string name, string unit, string description, params (string Label, string Value, Func<EngineStatus, double> Read)[] series) =>
        _meter.CreateObservableGauge(name, () => Observe(series), unit, description);

    private void Counter(string name, string unit, string description, params (string Label, string Value, Func<EngineStatus, double> Read)[] series) =>
        _meter.CreateObservableCounter(name, () => Observe(series), unit, description);

    /// <summary>One status read for all series of an instrument, each series tagged with the worker's identity and its own label.</summary>
    private IEnumerable<Measurement<double>> Observe((string Label, string Value, Func<EngineStatus, double> Read)[] series)
    {
        if (_api.TryGetStatus() is not { } status)
        {
            return [];
        }

        return series.Select(s => new Measurement<double>(s.Read(status),
            s.Label.Length == 0 ? _identity : [.. _identity, new KeyValuePair<string, object?>(s.Label, s.Value)]));
    }
}
