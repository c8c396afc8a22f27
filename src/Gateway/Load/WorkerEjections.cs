using System.Collections.Concurrent;

namespace GpuFleet.Gateway.Load;

/// <summary>
/// Which workers passive health has taken out, until when, and how far along their return is. Written by the passive
/// health policy (each forwarded request's outcome), read by the routing policy (a returning worker's share of its
/// slots). Failures of requests that were already in flight when the worker was taken out count once, not again.
/// </summary>
internal sealed class WorkerEjections(PassiveHealthOptions options, TimeProvider time)
{
    /// <summary>Share of its slots a worker gets at the start of its return.</summary>
    internal const double FirstShare = 0.1;

    private readonly ConcurrentDictionary<string, Record> _records = new(StringComparer.Ordinal);

    /// <summary>An attempt on <paramref name="destination"/> failed: the time out to take it out for, or null when it stays in.</summary>
    public TimeSpan? Failed(string destination)
    {
        var record = _records.GetOrAdd(destination, _ => new Record());
        var now = time.GetTimestamp();
        lock (record)
        {
            if (record.ReturnsAt != 0 && now < record.ReturnsAt)
            {
                return null; // already out: a request it held when it was taken out
            }

            record.Failures++;
            if (!InSlowStart(record, now) && record.Failures < options.EjectAfterFailures)
            {
                return null;
            }

            record.CoolDown = record.CoolDown == TimeSpan.Zero ? options.FirstCoolDown
                : TimeSpan.FromTicks(Math.Min(record.CoolDown.Ticks * 2, options.MaxCoolDown.Ticks));
            record.Failures = 0;
            record.ReturnsAt = now + (long)(record.CoolDown.TotalSeconds * time.TimestampFrequency);
            return record.CoolDown;
        }
    }

    /// <summary>
    /// <paramref name="destination"/> served a request. True when it was out (a last resort that worked): it returns now,
    /// with a slow start. After a whole slow start without failure its next ejection starts from the first time out again.
    /// </summary>
    public bool Served(string destination)
    {
        if (!_records.TryGetValue(destination, out var record))
        {
            return false;
        }

        var now = time.GetTimestamp();
        lock (record)
        {
            record.Failures = 0;
            if (record.ReturnsAt != 0 && now < record.ReturnsAt)
            {
                record.ReturnsAt = now;
                return true;
            }

            if (record.ReturnsAt != 0 && !InSlowStart(record, now))
            {
                record.CoolDown = TimeSpan.Zero;
                record.ReturnsAt = 0;
            }

            return false;
        }
    }

    /// <summary>The share of its slots <paramref name="destination"/> may be given: 1, less while it returns (and while it is out).</summary>
    public double Share(string destination)
    {
        if (!_records.TryGetValue(destination, out var record))
        {
            return 1;
        }

        var now = time.GetTimestamp();
        lock (record)
        {
            if (record.ReturnsAt == 0)
            {
                return 1;
            }

            if (now < record.ReturnsAt)
            {
                return FirstShare;
            }

            var returned = (double)(now - record.ReturnsAt) / time.TimestampFrequency;
            return options.SlowStart <= TimeSpan.Zero ? 1 : Math.Clamp(FirstShare + (1 - FirstShare) * returned / options.SlowStart.TotalSeconds, FirstShare, 1);
        }
    }

    private bool InSlowStart(Record record, long now) =>
        record.ReturnsAt != 0 && now >= record.ReturnsAt && (now - record.ReturnsAt) < options.SlowStart.TotalSeconds * time.TimestampFrequency;

    private sealed class Record
    {
        public int Failures;
        public TimeSpan CoolDown;

        /// <summary>Timestamp its time out ends (0: never taken out, or fully back).</summary>
        public long ReturnsAt;
    }
}
