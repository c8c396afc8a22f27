using GpuFleet.Gateway.Destinations;
using GpuFleet.Gateway.Hosting;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Observability;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using GpuFleet.Gateway.Forwarding;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.State;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.Transforms;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The gateway's composition entry point.</summary>
public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the GpuFleet gateway: options from the <c>Gateway</c> section (validated at start, every problem
    /// named), worker sources, the load view (every worker's status stream), the affinity index (Redis or in
    /// process), the time-to-first-token policy, forwarding with failover and timeouts, and API keys and limits.
    /// The app maps it with <c>MapGpuFleetGateway()</c>.
    /// </summary>
    public static IServiceCollection AddGpuFleetGateway(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddValidatedOptions<GatewayOptions>(configuration, GatewayOptions.SectionName, o => o.Validate());
        services.AddGpuFleetExceptionHandler();
        services.AddGpuFleetDestinations();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<GatewayRedis>();
        services.TryAddSingleton<WorkerLoadBoard>();
        // What Destinations' proxy configuration needs from Load and Routing, given here so that it names neither.
        services.TryAddSingleton<IWorkerGrpcAddresses, StatusGrpcAddresses>();
        services.TryAddSingleton(new WorkerClusterPolicies(ConfiguredRoutingPolicy.PolicyName, ReadyWorkersPolicy.PolicyName, ConnectionFailureHealthPolicy.PolicyName));
        services.AddSingleton<Yarp.ReverseProxy.Health.IAvailableDestinationsPolicy, ReadyWorkersPolicy>();
        services.AddValidatedOptions<PassiveHealthOptions>(configuration, PassiveHealthOptions.SectionName, o => o.Validate());
        services.TryAddSingleton<WorkerEjections>();
        services.AddSingleton<Yarp.ReverseProxy.Health.IPassiveHealthCheckPolicy, ConnectionFailureHealthPolicy>();
        services.AddHostedService<WorkerStatusMonitor>();
        services.AddGpuFleetRouting(configuration);
        services.AddSingleton<Yarp.ReverseProxy.Forwarder.IForwarderHttpClientFactory, BufferedBodyTransform.ClientFactory>();
        services.AddReverseProxy().AddTransforms(context =>
        {
            context.AddRequestTransform(BufferedBodyTransform.ApplyAsync);
            context.AddResponseTransform(WorkerResponseTransform.ApplyAsync);
        });
        services.AddGpuFleetApiKeys();
        services.AddHealthChecks();
        services.TryAddSingleton<GatewayMetrics>();
        services.TryAddSingleton<RoutingMetrics>();
        services.AddGpuFleetMetrics("gpufleet-gateway", GatewayMetrics.MeterName);
        return services;
    }

    /// <summary>Routing (affinity index, time-to-first-token policy) and forwarding (failover, timeouts, overload).</summary>
    private static void AddGpuFleetRouting(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<RoutingOptions>(configuration, RoutingOptions.SectionName, o => o.Validate());
        services.AddValidatedOptions<ForwardingOptions>(configuration, ForwardingOptions.SectionName, o => o.Validate());
        services.TryAddSingleton(sp => new PrefixHasher(AffinitySecret(sp), sp.GetRequiredService<RoutingOptions>().BlockBytes));
        services.TryAddSingleton<RequestInspector>();
        services.TryAddSingleton<AffinityIndex>();
        services.TryAddSingleton<WorkerTraffic>();
        services.TryAddSingleton<BytesPerToken>();
        services.TryAddSingleton<RetryBudget>();
        services.TryAddSingleton<ResponseWatchdog>();
        services.TryAddSingleton<FirstTokenTimeouts>();
        services.AddHostedService(sp => sp.GetRequiredService<ResponseWatchdog>());
        services.TryAddSingleton<TimeToFirstTokenPolicy>();
        services.TryAddSingleton<GpuFleet.Gateway.Routing.Peers.PeerSignals>();
        services.AddSingleton<ILoadBalancingPolicy, ConfiguredRoutingPolicy>();
        services.AddHostedService<HoldingsSync>();
    }

    private static byte[] AffinitySecret(IServiceProvider services)
    {
        if (services.GetRequiredService<RoutingOptions>().AffinityKey is { } key)
        {
            return Convert.FromBase64String(key);
        }

        var redis = services.GetRequiredService<GatewayRedis>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(PrefixHasher));
        if (redis.Configured)
        {
            GatewayStartLog.RandomAffinityKeyWithRedis(logger);
        }
        else
        {
            GatewayStartLog.RandomAffinityKey(logger);
        }

        return System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
    }

    /// <summary>Binds options from a section, validates them at start (every problem listed) and makes the value injectable.</summary>
    private static void AddValidatedOptions<T>(this IServiceCollection services, IConfiguration configuration, string section, Func<T, IReadOnlyList<string>> validate)
        where T : class
    {
        services.AddOptions<T>().Bind(configuration.GetSection(section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<T>, ListValidator<T>>(_ => new ListValidator<T>(validate)));
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<T>>().Value);
    }

    private sealed class ListValidator<T>(Func<T, IReadOnlyList<string>> validate) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var errors = validate(options);
            return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
        }
    }
}
