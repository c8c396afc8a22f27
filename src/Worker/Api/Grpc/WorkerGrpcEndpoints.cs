using GpuFleet.Contracts.Grpc;
using GpuFleet.Contracts.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace GpuFleet.Worker.Api.Grpc;

/// <summary>Maps the worker's gRPC services: Inference, WorkerStatusService and grpc.health.v1.Health.</summary>
internal static class WorkerGrpcEndpoints
{
    public const string InferenceService = "gpufleet.v1.Inference";

    public static void Map(IEndpointRouteBuilder endpoints, string? host)
    {
        var inference = endpoints.ServiceProvider.GetRequiredService<InferenceGrpcService>();
        var status = endpoints.ServiceProvider.GetRequiredService<WorkerStatusGrpcService>();
        var health = endpoints.ServiceProvider.GetRequiredService<GrpcHealthService>();
        var routes = host is null ? endpoints : endpoints.MapGroup(string.Empty).RequireHost(host);
        routes.MapGrpcServerStreaming<GenerateRequest, GenerateResponse>(InferenceGrpcService.GenerateMethod, GenerateRequest.Parser, inference.GenerateAsync);
        routes.MapGrpcServerStreaming<WatchStatusRequest, WorkerStatus>(WorkerStatusGrpcService.WatchMethod, WatchStatusRequest.Parser, status.WatchAsync);
        routes.MapGrpcHealthService(health);
    }
}
