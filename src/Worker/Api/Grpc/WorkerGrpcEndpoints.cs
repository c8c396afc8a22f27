using Grpc.AspNetCore.HealthChecks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace GpuFleet.Worker.Api.Grpc;

/// <summary>
/// The worker's gRPC services on Grpc.AspNetCore: Inference, WorkerStatusService, grpc.health.v1.Health (bound to
/// readiness and drain by <see cref="WorkerReadinessHealthCheck"/>) and server reflection.
/// </summary>
internal static class WorkerGrpcEndpoints
{
    /// <summary>The health service name of the Inference service (the full proto name, as gRPC clients ask for it).</summary>
    public static readonly string InferenceService = Contracts.V1.Inference.Descriptor.FullName;

    /// <summary>The default receive limit, 4 MiB, as in grpc-dotnet, grpc-java and grpc-go (and our own server before).</summary>
    public const int MaxReceiveMessageSize = 4 * 1024 * 1024;

    /// <summary>How often the health publisher re-evaluates readiness for Watch callers (drain is pushed at once).</summary>
    public static readonly TimeSpan HealthPeriod = TimeSpan.FromSeconds(1);

    public static void AddServices(IServiceCollection services)
    {
        services.AddGrpc(o =>
        {
            // Requests are prompts: 4 MiB is plenty and bounds memory per call. Responses are token deltas and a
            // status; no send limit beyond the 4 GiB framing one, as before.
            o.MaxReceiveMessageSize = MaxReceiveMessageSize;
            o.MaxSendMessageSize = null;
            // Handler exceptions reach clients as "Exception was thrown by handler.", never with internals.
            o.EnableDetailedErrors = false;
        });
        services.AddGrpcReflection();
        services.AddGrpcHealthChecks(o =>
            {
                // "" (the whole server, mapped by default) and the Inference service both follow readiness and drain.
                o.Services.Map(InferenceService, _ => true);
                // A drain must reach watchers as NOT_SERVING; by default Watch calls end when shutdown begins, which
                // is before the drain, so a watcher would see its stream end instead of the status.
                o.SuppressCompletionOnShutdown = true;
            })
            .AddCheck<WorkerReadinessHealthCheck>(WorkerReadinessHealthCheck.Name);
        // The publisher feeds Watch callers; its default first run after 5 s and period of 30 s would leave a
        // loaded worker NOT_SERVING to watchers for that long. Check itself always runs the check afresh.
        services.Configure<HealthCheckPublisherOptions>(o =>
        {
            o.Delay = TimeSpan.Zero;
            o.Period = HealthPeriod;
        });
        services.TryAddSingleton<InferenceGrpcService>();
        services.TryAddSingleton<WorkerStatusGrpcService>();
    }

    /// <summary>Maps the services; with a host (<c>*:port</c>) only requests to the gRPC port reach them.</summary>
    public static void Map(IEndpointRouteBuilder endpoints, string? host)
    {
        var routes = host is null ? endpoints : endpoints.MapGroup(string.Empty).RequireHost(host);
        routes.MapGrpcService<InferenceGrpcService>();
        routes.MapGrpcService<WorkerStatusGrpcService>();
        routes.MapGrpcHealthChecksService();
        routes.MapGrpcReflectionService();
    }
}
