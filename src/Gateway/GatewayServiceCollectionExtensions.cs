using GpuFleet.Contracts;
using GpuFleet.Gateway.Destinations;
using GpuFleet.Gateway.Hosting;
using GpuFleet.Gateway.Load;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The gateway's composition entry point.</summary>
public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the GpuFleet gateway: options from the <c>Gateway</c> section (validated at start, every problem
    /// named), YARP forwarding the OpenAI API to the workers with <c>x-gpufleet-worker</c> on each response, and
    /// the load view: every worker's status stream, keeping draining and unready workers out of rotation.
    /// </summary>
    public static IServiceCollection AddGpuFleetGateway(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<GatewayOptions>().Bind(configuration.GetSection(GatewayOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>());
        services.AddSingleton<IProxyConfigProvider, StaticWorkerProxyConfig>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<GpuFleet.Gateway.State.GatewayRedis>();
        services.TryAddSingleton<WorkerLoadBoard>();
        services.AddSingleton<Yarp.ReverseProxy.Health.IAvailableDestinationsPolicy, ReadyWorkersPolicy>();
        services.AddHostedService<WorkerStatusMonitor>();
        services.AddReverseProxy().AddTransforms(context => context.AddResponseTransform(transform =>
        {
            // Which worker answered, by the name it reports (its address until its status arrived).
            if (transform.HttpContext.Features.Get<IReverseProxyFeature>()?.ProxiedDestination is { } destination)
            {
                var board = transform.HttpContext.RequestServices.GetRequiredService<WorkerLoadBoard>();
                var name = board.Get(destination.DestinationId)?.Status?.Name;
                transform.HttpContext.Response.Headers[GpuFleetHeaders.Worker] = string.IsNullOrEmpty(name) ? destination.DestinationId : name;
            }

            return ValueTask.CompletedTask;
        }));
        services.AddHealthChecks();
        return services;
    }

    private sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
    {
        public ValidateOptionsResult Validate(string? name, GatewayOptions options)
        {
            var errors = options.Validate();
            return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
        }
    }
}
