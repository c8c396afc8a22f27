using GpuFleet.Contracts.Redis;

namespace GpuFleet.Contracts.Tests.Redis;

/// <summary>Redis options validation: every problem named by its key.</summary>
public sealed class RedisOptionsTests
{
    [Theory]
    [InlineData("127.0.0.1:6379")]
    [InlineData("redis.default.svc:6380")]
    [InlineData("[::1]:6379")]
    public void Validate_Defaults_AndGoodEndpoints_HaveNoErrors(string endpoint)
    {
        Assert.Empty(new RedisOptions { Endpoint = endpoint }.Validate());
    }

    [Fact]
    public void Validate_EveryProblem_NamedByItsKey()
    {
        var options = new RedisOptions
        {
            Endpoint = "localhost",
            Password = "",
            Database = -1,
            ConnectTimeout = TimeSpan.Zero,
            CommandTimeout = TimeSpan.FromSeconds(-1),
            MaxReconnectDelay = TimeSpan.Zero,
        };

        var errors = options.Validate();
        Assert.Equal(6, errors.Count);
        foreach (var key in new[] { "Redis:Endpoint", "Redis:Password", "Redis:Database", "Redis:ConnectTimeout", "Redis:CommandTimeout", "Redis:MaxReconnectDelay" })
        {
            Assert.Single(errors, error => error.StartsWith(key + " ", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("host:")]
    [InlineData(":6379")]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    [InlineData("::1:6379")]
    [InlineData("host name:6379")]
    public void Validate_BadEndpoint_IsReported(string endpoint)
    {
        Assert.Contains(new RedisOptions { Endpoint = endpoint }.Validate(), error => error.StartsWith("Redis:Endpoint", StringComparison.Ordinal));
    }

    [Fact]
    public void Connect_InvalidOptions_ThrowsWithEveryProblem()
    {
        var error = Assert.Throws<ArgumentException>(() => RedisConnection.Connect(new RedisOptions { Endpoint = "x", Database = -3 }));
        Assert.Contains("Redis:Endpoint", error.Message, StringComparison.Ordinal);
        Assert.Contains("Redis:Database", error.Message, StringComparison.Ordinal);
    }
}
