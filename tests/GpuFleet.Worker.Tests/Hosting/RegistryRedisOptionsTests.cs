using GpuFleet.Contracts;
using GpuFleet.Worker.Hosting;
using StackExchange.Redis;

namespace GpuFleet.Worker.Tests.Hosting;

/// <summary>The worker's <c>--redis</c> (Worker:Redis): a StackExchange.Redis configuration string, checked at start.</summary>
public sealed class RegistryRedisOptionsTests
{
    // Validation only checks that the model file exists; any existing file will do.
    private static readonly string ExistingFile = typeof(RegistryRedisOptionsTests).Assembly.Location;

    [Fact]
    public void A_full_configuration_string_is_accepted_with_the_registry_defaults()
    {
        var options = new WorkerOptions { ModelPath = ExistingFile, HttpPort = 8080, GrpcPort = 8081, Redis = "redis-0:6379,redis-1:6379,password=s3cret,ssl=true" };
        Assert.Empty(options.Validate());

        var settings = RedisSettings.Parse(options.Redis, RedisSettings.WorkerKey, [])!;
        Assert.Equal(2, settings.EndPoints.Count);
        Assert.False(settings.AbortOnConnectFail);
        Assert.Same(BacklogPolicy.FailFast, settings.BacklogPolicy);
        Assert.Equal(1000, settings.AsyncTimeout);
        Assert.Equal("redis-0:6379,redis-1:6379", RedisSettings.Describe(settings));
    }

    [Theory]
    [InlineData("password=s3cret")]
    [InlineData("redis:6379,password=s3cret,flavour=mint")]
    [InlineData("redis:6379,password=s3cret,abortConnect=true")]
    public void A_bad_string_is_refused_naming_Worker_Redis_and_never_the_password(string redis)
    {
        var options = new WorkerOptions { ModelPath = ExistingFile, HttpPort = 8080, GrpcPort = 8081, Redis = redis };
        var error = Assert.Single(options.Validate());
        Assert.StartsWith("Worker:Redis ", error, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", error, StringComparison.Ordinal);
    }
}
