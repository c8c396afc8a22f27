namespace GpuFleet.Contracts.Tests;

/// <summary>The one rounding of a wait to Retry-After's whole seconds, and its gRPC pushback form.</summary>
public sealed class RetryAfterTests
{
    [Theory]
    [InlineData(0.001, 1)] // never less than 1: 0 would invite an immediate retry
    [InlineData(0, 1)]
    [InlineData(-3, 1)]
    [InlineData(1, 1)]
    [InlineData(1.0001, 2)] // rounded up: a client does not come back early
    [InlineData(14, 14)]
    [InlineData(59.5, 60)]
    [InlineData(61, 60)] // the caller's bound
    [InlineData(1e12, 60)]
    public void A_wait_becomes_whole_seconds_rounded_up_within_1_and_the_bound(double seconds, int expected)
    {
        Assert.Equal(expected, RetryAfter.Seconds(seconds, max: 60));
        if (Math.Abs(seconds) < TimeSpan.MaxValue.TotalSeconds)
        {
            Assert.Equal(expected, RetryAfter.Seconds(TimeSpan.FromSeconds(seconds), max: 60));
        }
    }

    [Fact]
    public void Without_a_real_bound_a_long_wait_saturates_instead_of_wrapping()
    {
        Assert.Equal(14, RetryAfter.Seconds(TimeSpan.FromSeconds(13.2), max: int.MaxValue));
        Assert.Equal(int.MaxValue, RetryAfter.Seconds(TimeSpan.FromDays(36_500), max: int.MaxValue));
        Assert.Equal(int.MaxValue, RetryAfter.Seconds(TimeSpan.MaxValue, max: int.MaxValue));
    }

    [Fact]
    public void The_grpc_pushback_is_the_same_wait_in_milliseconds()
    {
        Assert.Equal("grpc-retry-pushback-ms", RetryAfter.GrpcPushbackHeader);
        Assert.Equal("3000", RetryAfter.GrpcPushback(3));
        Assert.Equal("2147483647000", RetryAfter.GrpcPushback(int.MaxValue));
    }
}
