using GpuFleet.Contracts.Redis;

namespace GpuFleet.Contracts.Tests.Redis;

/// <summary>Reconnect backoff bounds and determinism; the script hash.</summary>
public sealed class RedisBackoffTests
{
    [Fact]
    public void NextDelay_DoublesWithinJitterBounds_UntilTheCap()
    {
        var random = new Random(42);
        var max = TimeSpan.FromSeconds(5);
        for (var attempt = 0; attempt < 40; attempt++)
        {
            var ceiling = Math.Min(max.TotalMilliseconds, 100 * Math.Pow(2, Math.Min(attempt, 30)));
            var delay = RedisBackoff.NextDelay(attempt, max, random).TotalMilliseconds;
            Assert.InRange(delay, ceiling / 2, ceiling);
        }
    }

    [Fact]
    public void NextDelay_SameSeed_SameSequence_DifferentSeeds_Differ()
    {
        static double[] Run(int seed)
        {
            var random = new Random(seed);
            return [.. Enumerable.Range(0, 8).Select(a => RedisBackoff.NextDelay(a, TimeSpan.FromSeconds(5), random).TotalMilliseconds)];
        }

        Assert.Equal(Run(1), Run(1));
        Assert.NotEqual(Run(1), Run(2));
    }

    [Fact]
    public void Script_Sha1_MatchesRedis()
    {
        // The hash Redis's own documentation gives for this script.
        Assert.Equal("e0e1f9fabfc9d4800c877a703b823ac0578ff8db", new RedisScript("return 1").Sha1);
    }
}
