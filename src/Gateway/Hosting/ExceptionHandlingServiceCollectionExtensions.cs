using GpuFleet.Gateway.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="GatewayExceptionHandler"/> for <c>UseExceptionHandler()</c>.</summary>
internal static class ExceptionHandlingServiceCollectionExtensions
{
    public static IServiceCollection AddGpuFleetExceptionHandler(this IServiceCollection services)
    {
        services.AddExceptionHandler<GatewayExceptionHandler>();
        services.Configure<ExceptionHandlerOptions>(options =>
        {
            // The middleware wants a last resort besides the handlers; ours answers every exception it is given, so
            // this one never runs.
            options.ExceptionHandler = static _ => Task.CompletedTask;
            // GatewayExceptionHandler logs what it handles; the middleware's own "unhandled exception" error would
            // log the same exception a second time (.NET 10's default too; set here so that a change of default cannot log it twice).
            options.SuppressDiagnosticsCallback = static context => context.ExceptionHandledBy == ExceptionHandledType.ExceptionHandlerService;
        });
        return services;
    }
}
