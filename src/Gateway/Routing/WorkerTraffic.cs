using System.Collections.Concurrent;

namespace GpuFleet.Gateway.Routing;

/// <summary>
/// What this gateway itself knows about its traffic to each worker, between the workers' own reports: requests in
/// flight and when each was sent (those sent after a worker's last report are not in it yet), and measured request
/// durations. (Connection failures are YARP passive health: see ConnectionFailureHealthPolicy.)
/// </summary>
internal sealed class WorkerTraffic(TimeProvider time)
{
    // Workers report at least every 2 s; more sends than this to one worker between two reports only make the
    // count of unreported blocks low, which the tie-break on the last send still covers.
    private const int MaxRecentSends = 64;

    private readonly ConcurrentDictionary<string, Counters> _workers = new(StringComparer.Ordinal);

    /// <summary>
    /// Counts a request sent to <paramref name="destination"/> that brings it <paramref name="newBlocks"/> prefix blocks
    /// it does not hold yet and, as far as the policy knows, <paramref name="prefillTokens"/> prompt tokens to prefill
    /// (null: unknown); dispose the result when its response ends.
    /// </summary>
    public Sent Begin(string destination, int newBlocks = 0, int? prefillTokens = null)
    {
        var counters = For(destination);
        var at = time.GetTimestamp();
        var entry = (at, prefillTokens);
        lock (counters)
        {
            counters.InFlight.Add(entry);
            counters.RecentSends.Enqueue((at, Math.Max(0, newBlocks)));
            if (counters.RecentSends.Count > MaxRecentSends)
            {
                counters.RecentSends.Dequeue();
            }
        }

        return new Sent(this, counters, entry);
    }

    /// <summary>
    /// Prefix blocks new to the worker in the requests this gateway sent it after <paramref name="reportReceivedAt"/>
    /// (its report cannot list them yet), and when this gateway last sent it a request (0: never).
    /// </summary>
    public (int Blocks, long LastSentAt) SentBlocksSince(string destination, long reportReceivedAt)
    {
        var counters = For(destination);
        lock (counters)
        {
            var blocks = 0;
            var last = 0L;
            foreach (var (at, count) in counters.RecentSends)
            {
                blocks += at > reportReceivedAt ? count : 0;
                last = Math.Max(last, at);
            }

            return (blocks, last);
        }
    }

    /// <summary>Requests in flight to the worker that were sent after <paramref name="reportReceivedAt"/> (not counted in its report).</summary>
    public int SentSince(string destination, long reportReceivedAt)
    {
        var counters = For(destination);
        lock (counters)
        {
            return counters.InFlight.Count(r => r.At > reportReceivedAt);
        }
    }

    /// <summary>
    /// The work at the worker now, from its report taken at <paramref name="reportReceivedAt"/> plus the requests this
    /// gateway sent since then. A report taken before this gateway saw its last request to the worker end, with nothing
    /// of ours still in flight there, describes work that has (at least partly) finished: only its queue counts then,
    /// not its running requests or their pending prefill. The policy's estimate and the "every worker is full" check
    /// both read this.
    /// </summary>
    /// <remarks>
    /// <see cref="WorkEstimate.PrefillAhead"/> is the prompt tokens the worker will prefill before it is done with
    /// <paramref name="prefillTokens"/> of a new prompt's own. It prefills the prompt with the fewest tokens left first,
    /// so each prompt there delays the new one by at most the new one's size: a later turn's few hundred tokens do not
    /// wait behind a cold 16k-token prompt (see EngineOptions.PrefillOvertakeLimit). The report gives the backlog as one
    /// sum over its requests, so that is capped at their count times the new prompt's size; a request sent since counts
    /// its own expected prefill (unknown: the new prompt's size).
    /// </remarks>
    public WorkEstimate Outstanding(string destination, GpuFleet.Contracts.V1.EngineStatus engine, long reportReceivedAt, int prefillTokens = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(engine);
        var counters = For(destination);
        var unreported = 0;
        var unreportedAhead = 0L;
        int inFlight;
        lock (counters)
        {
            foreach (var (at, tokens) in counters.InFlight)
            {
                if (at > reportReceivedAt)
                {
                    unreported++;
                    unreportedAhead += Math.Min(tokens ?? prefillTokens, prefillTokens);
                }
            }

            inFlight = counters.InFlight.Count;
        }

        var outdated = inFlight == 0 && Volatile.Read(ref counters.EndedAt) > reportReceivedAt;
        var running = outdated ? 0 : (int)engine.RunningSlots;
        var reported = outdated ? 0 : engine.PendingPrefillTokens;
        var reportedAhead = Math.Min(reported, (ulong)Math.Max(1, running + engine.QueueDepth) * (ulong)Math.Max(0, prefillTokens));
        return new WorkEstimate(running + (int)engine.QueueDepth + unreported, unreported, reported, (long)reportedAhead + unreportedAhead);
    }

    public int InFlight(string destination)
    {
        var counters = For(destination);
        lock (counters)
        {
            return counters.InFlight.Count;
        }
    }

    /// <summary>Mean duration of this worker's recent requests (exponentially weighted), or null before the first.</summary>
    public TimeSpan? MeanDuration(string destination) => For(destination).MeanSeconds is > 0 and var s ? TimeSpan.FromSeconds(s) : null;

    /// <summary>The worker's prefill rate as last measured by it (its recent rate drops to 0 when idle), or null.</summary>
    public double? KnownPrefillRate(string destination, double reported)
    {
        var counters = For(destination);
        if (reported > 1)
        {
            Volatile.Write(ref counters.PrefillRate, reported);
        }

        var known = Volatile.Read(ref counters.PrefillRate);
        return known > 1 ? known : null;
    }

    private Counters For(string destination) => _workers.GetOrAdd(destination, _ => new Counters());

    private void End(Counters counters, (long At, int? PrefillTokens) entry, bool measure)
    {
        var seconds = time.GetElapsedTime(entry.At).TotalSeconds;
        Volatile.Write(ref counters.EndedAt, time.GetTimestamp());
        lock (counters)
        {
            counters.InFlight.Remove(entry);
            if (measure)
            {
                counters.MeanSeconds = counters.MeanSeconds == 0 ? seconds : (0.8 * counters.MeanSeconds) + (0.2 * seconds);
            }
        }
    }

    /// <summary>
    /// Requests at the worker (running, queued, sent since its report), those unreported, its reported prefill backlog,
    /// and the prefill a new prompt waits for there (<see cref="Outstanding"/>).
    /// </summary>
    public readonly record struct WorkEstimate(int Requests, int Unreported, ulong PendingPrefillTokens, long PrefillAhead);

    internal sealed class Counters
    {
        /// <summary>Requests in flight: when each was sent and the prefill the policy expected of it (null: unknown).</summary>
        public List<(long At, int? PrefillTokens)> InFlight { get; } = [];

        /// <summary>The latest sends (when, new prefix blocks), oldest first, at most <see cref="MaxRecentSends"/>.</summary>
        public Queue<(long At, int Blocks)> RecentSends { get; } = new();

        public double MeanSeconds { get; set; }

#pragma warning disable CA1051 // Fields, for Volatile access from the routing path.
        public long EndedAt;

        public double PrefillRate;
#pragma warning restore CA1051
    }

    /// <summary>One request in flight; <see cref="Complete"/> it to measure its duration, or just dispose it.</summary>
    public sealed class Sent : IDisposable
    {
        private readonly WorkerTraffic _owner;
        private readonly Counters _counters;
        private readonly (long At, int? PrefillTokens) _entry;
        private int _ended;

        internal Sent(WorkerTraffic owner, Counters counters, (long At, int? PrefillTokens) entry)
        {
            _owner = owner;
            _counters = counters;
            _entry = entry;
        }

        /// <summary>The worker served the request: its duration feeds the queue-wait estimate.</summary>
        public void Complete() => End(measure: true);

        public void Dispose() => End(measure: false);

        private void End(bool measure)
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
            {
                _owner.End(_counters, _entry, measure);
            }
        }
    }
}
