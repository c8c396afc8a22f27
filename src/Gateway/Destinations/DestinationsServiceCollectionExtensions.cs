using GpuFleet.Contracts;
using GpuFleet.Gateway.Hosting;
using GpuFleet.Gateway.State;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;

namespace GpuFleet.Gateway.Destinations;

/// <summary>Where the gateway's workers come from: the directory, its three sources, and YARP's view of it.</summary>
internal static class DestinationsServiceCollectionExtensions
{
    /// <summary>
    /// Adds the <see cref="WorkerDirectory"/> (static list, DNS, Redis registry), the YARP configuration that follows
    /// it, and the check that at least one source is configured.
    /// </summary>
    public static IServiceCollection AddGpuFleetDestinations(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<GatewayRedis>();
        services.TryAddSingleton<WorkerDirectory>();
        services.TryAddSingleton<IWorkerAddressResolver, SystemWorkerAddressResolver>();
        services.AddSingleton<IProxyConfigProvider, WorkerProxyConfigProvider>();
        services.AddHostedService<DnsWorkerSource>();
        services.AddHostedService<RedisWorkerRegistry>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayOptions>, WorkerSourcesValidator>());
        return services;
    }

    /// <summary>
    /// No static worker, no DNS name and no Redis: the gateway could never route anything. A Redis configuration string
    /// that does not parse is reported here too, at start, with the other problems.
    /// </summary>
    private sealed class WorkerSourcesValidator(IConfiguration configuration) : IValidateOptions<GatewayOptions>
    {
        public ValidateOptionsResult Validate(string? name, GatewayOptions options)
        {
            var redis = configuration[RedisSettings.GatewayKey];
            var errors = new List<string>(options.ValidateSources(redisConfigured: !string.IsNullOrWhiteSpace(redis)));
            if (!string.IsNullOrWhiteSpace(redis))
            {
                RedisSettings.Parse(redis, RedisSettings.GatewayKey, errors);
            }

            return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
        }
    }
}
