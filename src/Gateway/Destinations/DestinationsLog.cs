using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.Destinations;

/// <summary>Log messages of the worker sources and the directory; each fires once per change, never per poll.</summary>
internal static partial class DestinationsLog
{
    [LoggerMessage(EventId = 200, EventName = "WorkerSetChanged", Level = LogLevel.Information,
        Message = "Worker set version {Version}: {Count} worker(s): {Destinations}")]
    public static partial void WorkerSetChanged(ILogger logger, long version, int count, string destinations);

    [LoggerMessage(EventId = 210, EventName = "DnsResolved", Level = LogLevel.Information,
        Message = "DNS {Entry} resolves to {Count} worker(s): {Urls}")]
    public static partial void DnsResolved(ILogger logger, string entry, int count, string urls);

    [LoggerMessage(EventId = 211, EventName = "DnsFailed", Level = LogLevel.Warning,
        Message = "DNS {Entry} did not resolve, keeping its last {Count} worker(s): {Reason}")]
    public static partial void DnsFailed(ILogger logger, string entry, string reason, int count);

    [LoggerMessage(EventId = 212, EventName = "DnsRecovered", Level = LogLevel.Information,
        Message = "DNS {Entry} resolves again")]
    public static partial void DnsRecovered(ILogger logger, string entry);

    [LoggerMessage(EventId = 220, EventName = "RegistryWorkerJoined", Level = LogLevel.Information,
        Message = "Registry: worker {Name} ({Model}) joined at {Url}")]
    public static partial void RegistryWorkerJoined(ILogger logger, string url, string name, string model);

    [LoggerMessage(EventId = 221, EventName = "RegistryWorkerLeft", Level = LogLevel.Information,
        Message = "Registry: worker {Name} at {Url} left (drained or its heartbeat expired)")]
    public static partial void RegistryWorkerLeft(ILogger logger, string url, string name);

    [LoggerMessage(EventId = 222, EventName = "RegistryUnavailable", Level = LogLevel.Warning,
        Message = "Registry in Redis at {Endpoint} unreadable, keeping its last {Count} worker(s): {Reason}")]
    public static partial void RegistryUnavailable(ILogger logger, string endpoint, string reason, int count);

    [LoggerMessage(EventId = 223, EventName = "RegistryRecovered", Level = LogLevel.Information,
        Message = "Registry in Redis at {Endpoint} readable again: {Count} worker(s)")]
    public static partial void RegistryRecovered(ILogger logger, string endpoint, int count);

    [LoggerMessage(EventId = 224, EventName = "RegistryRefilling", Level = LogLevel.Information,
        Message = "Registry in Redis at {Endpoint} reconnected: keeping the last {Count} worker(s) for {Seconds} s while workers announce themselves again")]
    public static partial void RegistryRefilling(ILogger logger, string endpoint, int count, double seconds);
}
