namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// Retries allowed over a sliding 10 s window: at least <see cref="ForwardingOptions.MinRetriesPer10Seconds"/>, else
/// <see cref="ForwardingOptions.RetryBudgetRatio"/> of the requests seen, so that failover cannot multiply an overload.
/// </summary>
public sealed class RetryBudget(ForwardingOptions options, TimeProvider time)
{
    private static readonly long Window = TimeSpan.FromSeconds(10).Ticks;
    private readonly Queue<long> _requests = new();
    private readonly Queue<long> _retries = new();
    private readonly Lock _gate = new();

    public void RecordRequest()
    {
        lock (_gate)
        {
            _requests.Enqueue(Now());
        }
    }

    /// <summary>Takes one retry from the budget; false when it is spent.</summary>
    public bool TryRetry()
    {
        lock (_gate)
        {
            var now = Now();
            Expire(_requests, now);
            Expire(_retries, now);
            var allowed = Math.Max(options.MinRetriesPer10Seconds, (int)(options.RetryBudgetRatio * _requests.Count));
            if (_retries.Count >= allowed)
            {
                return false;
            }

            _retries.Enqueue(now);
            return true;
        }
    }

    private static void Expire(Queue<long> queue, long now)
    {
        while (queue.Count > 0 && now - queue.Peek() > Window)
        {
            queue.Dequeue();
        }
    }

    private long Now() => time.GetUtcNow().UtcTicks;
}
