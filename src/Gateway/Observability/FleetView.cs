using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;

namespace GpuFleet.Gateway.Observability;

/// <summary>
/// The live fleet as <c>/fleet</c> and <c>/fleet.json</c> show it: every worker's state and load, and the headroom
/// computed as the Prometheus rules do (deploy/prometheus/gpufleet.rules.yml): sessions a worker holds with the first
/// token inside the objective are its slots plus the queue it drains within the objective (slots x objective / mean
/// request time, this gateway's measurement), at most slots + queue capacity; headroom is that minus running and
/// queued requests.
/// </summary>
internal sealed record FleetView(DateTimeOffset GeneratedAt, double ObjectiveSeconds, IReadOnlyList<FleetWorker> Workers)
{
    /// <summary>The time-to-first-token objective the headroom is computed for (the rules' 10 s).</summary>
    public const double FirstTokenObjectiveSeconds = 10;

    public int Available => Workers.Count(w => w.State == "available");

    public int RunningSlots => Workers.Sum(w => w.RunningSlots);

    public int TotalSlots => Workers.Sum(w => w.TotalSlots);

    public int Queued => Workers.Sum(w => w.QueueDepth);

    public double DecodeTokensPerSecond => Workers.Sum(w => w.DecodeTokensPerSecond);

    public double PrefillTokensPerSecond => Workers.Sum(w => w.PrefillTokensPerSecond);

    /// <summary>Headroom of the workers that take new requests.</summary>
    public double HeadroomSessions => Workers.Where(w => w.State == "available").Sum(w => w.HeadroomSessions);

    /// <summary>What one more worker like the current ones adds: their mean session capacity.</summary>
    public double SessionsPerAddedWorker => Workers.Count == 0 ? 0 : Workers.Average(w => w.SessionCapacity);

    public static FleetView From(WorkerLoadBoard board, WorkerTraffic traffic, TimeProvider time) =>
        new(time.GetUtcNow(), FirstTokenObjectiveSeconds,
            [.. board.All.OrderBy(l => l.Status?.Name ?? l.Destination, StringComparer.Ordinal).Select(l => Worker(board, traffic, l))]);

    private static FleetWorker Worker(WorkerLoadBoard board, WorkerTraffic traffic, WorkerLoad load)
    {
        var status = load.Status;
        var engine = status?.Engine;
        var state = !load.Connected ? "disconnected"
            : board.IsStale(load) ? "stale"
            : status is { Draining: true } ? "draining"
            : status is { Ready: false } ? "loading"
            : "available";
        var slots = (int)(engine?.TotalSlots ?? 0);
        var running = (int)(engine?.RunningSlots ?? 0);
        var queued = (int)(engine?.QueueDepth ?? 0);
        var queueCapacity = (int)(engine?.QueueCapacity ?? 0);
        var mean = traffic.MeanDuration(load.Destination)?.TotalSeconds;
        var capacity = mean is { } seconds
            ? Math.Min(slots * (1 + FirstTokenObjectiveSeconds / Math.Max(seconds, 0.001)), slots + queueCapacity)
            : slots;
        var prompt = engine?.PromptTokensTotal ?? 0;
        return new FleetWorker(
            load.Destination,
            status?.Name,
            status?.Model,
            state,
            queued,
            queueCapacity,
            running,
            slots,
            (long)(engine?.KvBytesUsed ?? 0),
            (long)(engine?.KvBytesTotal ?? 0),
            prompt == 0 ? 0 : (double)(engine?.ReusedPromptTokensTotal ?? 0) / prompt,
            engine?.PrefillTokensPerSecond ?? 0,
            engine?.DecodeTokensPerSecond ?? 0,
            mean,
            capacity,
            Math.Max(0, capacity - running - queued));
    }
}
