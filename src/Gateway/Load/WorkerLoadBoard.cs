using System.Collections.Concurrent;
using GpuFleet.Contracts.V1;

namespace GpuFleet.Gateway.Load;

/// <summary>What the gateway knows about one worker: its last status and whether its status stream is alive.</summary>
internal sealed record WorkerLoad(string Destination, WorkerStatus? Status, bool Connected, long ReceivedAt)
{
    private static readonly HashSet<ulong> None = [];

    /// <summary>The status's prefix blocks that a running prefill there is still computing, as a set for the policy's lookups.</summary>
    public IReadOnlySet<ulong> PrefillingBlocks { get; } =
        Status?.Engine is { PrefillingPrefixBlocks.Count: > 0 } engine ? engine.PrefillingPrefixBlocks.ToHashSet() : None;
}

/// <summary>
/// The gateway's view of every worker's load, fed by <see cref="WorkerStatusMonitor"/>. A worker is
/// available for new work when its stream is connected, it is ready and not draining, and its last status
/// is fresh (workers push at least every 2 s).
/// </summary>
internal sealed class WorkerLoadBoard(TimeProvider time)
{
    /// <summary>A status older than this is stale: the worker may be stuck or unreachable.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, WorkerLoad> _loads = new(StringComparer.Ordinal);

    /// <summary>Raised when a worker's availability changes (not on every status).</summary>
    public event Action? AvailabilityChanged;

    public IReadOnlyCollection<WorkerLoad> All => [.. _loads.Values];

    public WorkerLoad? Get(string destination) => _loads.TryGetValue(destination, out var load) ? load : null;

    public void Update(string destination, WorkerStatus status) =>
        Set(destination, new WorkerLoad(destination, status, Connected: true, time.GetTimestamp()));

    public void MarkDisconnected(string destination)
    {
        var previous = Get(destination);
        Set(destination, new WorkerLoad(destination, previous?.Status, Connected: false, previous?.ReceivedAt ?? 0));
    }

    /// <summary>Forgets a worker that left the directory, raising the event when it was available.</summary>
    public void Remove(string destination)
    {
        var before = IsAvailable(destination);
        if (_loads.TryRemove(destination, out _) && before)
        {
            AvailabilityChanged?.Invoke();
        }
    }

    public bool IsStale(WorkerLoad load) => !load.Connected || time.GetElapsedTime(load.ReceivedAt) > StaleAfter;

    /// <summary>Ready, not draining, and heard from recently.</summary>
    public bool IsAvailable(string destination) =>
        Get(destination) is { Status: { Ready: true, Draining: false } } load && !IsStale(load);

    /// <summary>Known to refuse new work (draining or not ready) according to a live stream.</summary>
    public bool IsRefusing(string destination) =>
        Get(destination) is { Status: { } status } load && !IsStale(load) && (status.Draining || !status.Ready);

    /// <summary>Re-evaluates staleness (called periodically), raising the event for workers that went silent.</summary>
    public void CheckStaleness(ISet<string> lastAvailable)
    {
        ArgumentNullException.ThrowIfNull(lastAvailable);
        var now = _loads.Keys.Where(IsAvailable).ToHashSet(StringComparer.Ordinal);
        if (!now.SetEquals(lastAvailable))
        {
            lastAvailable.Clear();
            lastAvailable.UnionWith(now);
            AvailabilityChanged?.Invoke();
        }
    }

    private void Set(string destination, WorkerLoad load)
    {
        var before = IsAvailable(destination);
        _loads[destination] = load;
        if (before != IsAvailable(destination))
        {
            AvailabilityChanged?.Invoke();
        }
    }
}
