namespace Microsoft.Extensions.DependencyInjection;

/// <summary>The gateway's composition entry point.</summary>
public static class GatewayServiceCollectionExtensions
{
    /// <summary>Adds the GpuFleet gateway's services (routing, affinity and limits arrive with the gateway issue).</summary>
    public static IServiceCollection AddGpuFleetGateway(this IServiceCollection services)
    {
        services.AddHealthChecks();
        return services;
    }
}
