using GpuFleet.Gateway.Auth;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The API keys and per-key limits, composed into <c>AddGpuFleetGateway</c>.</summary>
internal static class AuthServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ApiKeyStore"/> (also a hosted service: it loads <c>Gateway:KeysFile</c> at start, failing
    /// the start when the file is missing or invalid, and reloads it while running) and <see cref="KeyRateLimiter"/>
    /// (on the shared <c>GatewayRedis</c>). The pipeline adds <see cref="ApiKeyAuthenticationMiddleware"/> itself.
    /// </summary>
    public static IServiceCollection AddGpuFleetApiKeys(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<GpuFleet.Gateway.State.GatewayRedis>();
        if (services.Any(d => d.ServiceType == typeof(ApiKeyStore)))
        {
            return services;
        }

        services.AddSingleton<ApiKeyStore>();
        services.AddSingleton<IHostedService>(provider => provider.GetRequiredService<ApiKeyStore>());
        services.AddSingleton<KeyRateLimiter>();
        services.AddSingleton<GpuFleet.Gateway.Forwarding.IRequestAdmission, KeyLimitAdmission>();
        return services;
    }
}
