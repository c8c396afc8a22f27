using GpuFleet.Gateway.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace GpuFleet.Gateway.Destinations;

/// <summary>
/// The live set of workers, merged from the static list, DNS and the Redis registry. Each source replaces its own
/// list with <see cref="Update"/>; the merged set (one entry per destination, the first source winning a tie) gets a
/// new version only when it really changes, so YARP and the status monitor act on changes, not on every poll.
/// </summary>
internal sealed class WorkerDirectory
{
    private readonly Lock _gate = new();
    private readonly Dictionary<WorkerSource, IReadOnlyList<string>> _sources = [];
    private readonly ILogger _logger;
    private CancellationTokenSource _supersede = new();
    private volatile WorkerSet _current;

    public WorkerDirectory(IOptions<GatewayOptions> options, ILogger<WorkerDirectory>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _logger = logger ?? (ILogger)NullLogger.Instance;
        // Invalid static URLs are skipped here and reported by options validation at start: the host builds its
        // services before it validates, and validation must name every problem instead of failing in this constructor.
        _sources[WorkerSource.Static] = [.. options.Value.Workers];
        _current = new WorkerSet(0, Merge(), _supersede.Token);
    }

    /// <summary>The newest set; its <see cref="WorkerSet.ChangeToken"/> says when to read this again.</summary>
    public WorkerSet Current => _current;

    /// <summary>
    /// Replaces <paramref name="source"/>'s list of worker base URLs (invalid ones are ignored). Returns true when the
    /// merged set changed, in which case the previous set's change token has fired.
    /// </summary>
    public bool Update(WorkerSource source, IEnumerable<string> urls)
    {
        ArgumentNullException.ThrowIfNull(urls);
        CancellationTokenSource superseded;
        WorkerSet previous;
        WorkerSet next;
        lock (_gate)
        {
            _sources[source] = [.. urls];
            var merged = Merge();
            previous = _current;
            if (merged.SequenceEqual(previous.Workers))
            {
                return false;
            }

            superseded = _supersede;
            _supersede = new CancellationTokenSource();
            next = new WorkerSet(previous.Version + 1, merged, _supersede.Token);
            _current = next;
        }

        DestinationsLog.WorkerSetChanged(_logger, next.Version, next.Workers.Count,
            string.Join(", ", next.Workers.Select(w => w.Destination)));
        // Outside the lock: YARP's and the monitor's callbacks read Current again from inside Cancel.
        superseded.Cancel();
        return true;
    }

    /// <summary>The merged list: one entry per destination, by source priority, ordered by destination.</summary>
    private List<WorkerEndpoint> Merge()
    {
        var byDestination = new Dictionary<string, WorkerEndpoint>(StringComparer.OrdinalIgnoreCase);
        foreach (var (source, urls) in _sources.OrderBy(s => s.Key))
        {
            foreach (var url in urls)
            {
                if (TryCreate(url, source) is { } endpoint)
                {
                    byDestination.TryAdd(endpoint.Destination, endpoint);
                }
            }
        }

        return [.. byDestination.Values.OrderBy(w => w.Destination, StringComparer.Ordinal)];
    }

    private static WorkerEndpoint? TryCreate(string url, WorkerSource source) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? new WorkerEndpoint(uri.Authority, url.TrimEnd('/'), source)
            : null;
}
