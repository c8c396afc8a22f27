using GpuFleet.Worker;
using GpuFleet.Worker.Api;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The worker's composition entry point.</summary>
public static class WorkerServiceCollectionExtensions
{
    /// <summary>
    /// Adds the GpuFleet worker: options from the <c>Worker</c> and <c>Engine</c> sections (validated at
    /// start, every problem named), the llama.cpp backend, the model and the inference engine, which
    /// starts and drains with the host, and what the HTTP API needs (<c>MapGpuFleetWorker()</c> maps it).
    /// </summary>
    public static IServiceCollection AddGpuFleetWorker(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<WorkerOptions>().Bind(configuration.GetSection(WorkerOptions.SectionName)).ValidateOnStart();
        services.AddOptions<EngineOptions>().Bind(configuration.GetSection(EngineOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WorkerOptions>, ListValidator<WorkerOptions>>(
            _ => new ListValidator<WorkerOptions>(o => o.Validate())));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EngineOptions>, ListValidator<EngineOptions>>(
            _ => new ListValidator<EngineOptions>(o => o.Validate())));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<EngineHost>();
        services.AddHostedService(sp => sp.GetRequiredService<EngineHost>());
        services.TryAddSingleton<WorkerLifecycle>();
        services.AddHostedService(sp => sp.GetRequiredService<WorkerLifecycle>());
        services.AddHostedService<RegistryHeartbeat>();
        services.TryAddSingleton<WorkerApi>();
        services.TryAddSingleton<WorkerMetrics>();
        services.AddGpuFleetMetrics("gpufleet-worker", WorkerMetrics.MeterName);
        services.ConfigureOpenTelemetryMeterProvider(metrics => metrics.AddMeter(EngineMetrics.MeterName));
        GpuFleet.Worker.Api.Grpc.WorkerGrpcEndpoints.AddServices(services);
        return services;
    }

    /// <summary>Adapts an options class's own Validate() (which lists every problem) to the options system.</summary>
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
