namespace GpuFleet.Gateway.Observability;

/// <summary>One worker on the fleet page, from this gateway's load board.</summary>
internal sealed record FleetWorker(
    string Destination,
    string? Name,
    string? Model,
    string State,
    int QueueDepth,
    int QueueCapacity,
    int RunningSlots,
    int TotalSlots,
    long KvBytesUsed,
    long KvBytesTotal,
    double CacheHitRatio,
    double PrefillTokensPerSecond,
    double DecodeTokensPerSecond,
    double? MeanRequestSeconds,
    double SessionCapacity,
    double HeadroomSessions);
