using GpuFleet.Worker.Engine;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace GpuFleet.Worker.Api.Grpc;

/// <summary>
/// Healthy (grpc.health.v1 SERVING) while the engine is loaded and the worker is not draining; unhealthy
/// (NOT_SERVING) while loading or draining: the same answer as <c>/readyz</c>.
/// </summary>
internal sealed class WorkerReadinessHealthCheck(EngineHost engine, WorkerLifecycle lifecycle) : IHealthCheck
{
    public const string Name = "worker-readiness";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(lifecycle.Draining ? HealthCheckResult.Unhealthy("draining")
            : engine.Ready ? HealthCheckResult.Healthy("ready")
            : HealthCheckResult.Unhealthy("loading"));
}
