using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using GpuFleet.Gateway.Load;

namespace GpuFleet.Gateway.Observability;

/// <summary>
/// Event counts per worker for an observable counter that shows every known worker, at 0 until its first event: a
/// series that exists from the start lets <c>rate()</c> and alerts see the first event, and dashboards and tests find
/// the metric before anything went wrong. Bounded by the workers the gateway has known.
/// </summary>
internal sealed class PerWorkerCounts(WorkerLoadBoard board)
{
    private readonly ConcurrentDictionary<string, StrongBox<long>> _counts = new(StringComparer.Ordinal);

    public void Increment(string worker) => Interlocked.Increment(ref _counts.GetOrAdd(worker, _ => new StrongBox<long>()).Value);

    public IEnumerable<Measurement<long>> Observe()
    {
        var workers = new HashSet<string>(_counts.Keys, StringComparer.Ordinal);
        workers.UnionWith(board.All.Select(load => load.Destination));
        return workers.Select(worker => new Measurement<long>(
            _counts.TryGetValue(worker, out var count) ? Interlocked.Read(ref count.Value) : 0,
            new KeyValuePair<string, object?>("worker", worker)));
    }
}
