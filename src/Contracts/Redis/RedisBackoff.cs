namespace GpuFleet.Contracts.Redis;

/// <summary>Delays between reconnect attempts: exponential from 100 ms, capped, with jitter.</summary>
public static class RedisBackoff
{
    public static readonly TimeSpan Initial = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The delay before reconnect attempt <paramref name="attempt"/> (0 = first retry): the exponential ceiling
    /// min(max, 100 ms * 2^attempt), of which half is fixed and half random ("equal jitter"), so gateway
    /// replicas that lost Redis together do not come back in lockstep, yet no delay collapses to zero.
    /// </summary>
    public static TimeSpan NextDelay(int attempt, TimeSpan max, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var ceiling = Math.Min(max.TotalMilliseconds, Initial.TotalMilliseconds * Math.Pow(2, Math.Clamp(attempt, 0, 30)));
        return TimeSpan.FromMilliseconds((ceiling / 2) + (random.NextDouble() * ceiling / 2));
    }
}
