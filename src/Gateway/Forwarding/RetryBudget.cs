namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// Retries allowed over a sliding 10 s window (ten one-second buckets): at least
/// <see cref="ForwardingOptions.MinRetriesPer10Seconds"/>, else <see cref="ForwardingOptions.RetryBudgetRatio"/> of the
/// requests seen, so that failover cannot multiply an overload. Counting a request is lock-free.
/// </summary>
internal sealed class RetryBudget(ForwardingOptions options, TimeProvider time)
{
    private const int Buckets = 10;
    private readonly long[] _requests = new long[Buckets];
    private readonly long[] _retries = new long[Buckets];
    private readonly long[] _bucketSecond = new long[Buckets];
    private readonly Lock _gate = new();

    public void RecordRequest() => Interlocked.Increment(ref _requests[Bucket(Second())]);

    /// <summary>
    /// Whether a retry for <paramref name="cause"/> may go ahead: re-placing the work of a worker that is gone or full
    /// always may, without spending anything; a worker's 503 takes one retry from the budget.
    /// </summary>
    public bool TryRetry(RetryCause cause) => cause is RetryCause.WorkerAtCapacity or RetryCause.ConnectionFailed || TryRetry();

    /// <summary>Takes one retry from the budget; false when it is spent.</summary>
    public bool TryRetry()
    {
        lock (_gate)
        {
            var now = Second();
            Bucket(now);
            long requests = 0, retries = 0;
            for (var i = 0; i < Buckets; i++)
            {
                if (now - Volatile.Read(ref _bucketSecond[i]) < Buckets)
                {
                    requests += Interlocked.Read(ref _requests[i]);
                    retries += Interlocked.Read(ref _retries[i]);
                }
            }

            if (retries >= Math.Max(options.MinRetriesPer10Seconds, (long)(options.RetryBudgetRatio * requests)))
            {
                return false;
            }

            Interlocked.Increment(ref _retries[now % Buckets]);
            return true;
        }
    }

    /// <summary>The bucket of <paramref name="second"/>, cleared first when it still holds an older second.</summary>
    private int Bucket(long second)
    {
        var index = (int)(second % Buckets);
        var held = Volatile.Read(ref _bucketSecond[index]);
        if (held != second && Interlocked.CompareExchange(ref _bucketSecond[index], second, held) == held)
        {
            Interlocked.Exchange(ref _requests[index], 0);
            Interlocked.Exchange(ref _retries[index], 0);
        }

        return index;
    }

    private long Second() => time.GetUtcNow().ToUnixTimeSeconds();
}
