using System.Diagnostics.Metrics;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Observability;
using Microsoft.Extensions.DependencyInjection;

namespace GpuFleet.Gateway.Tests.Observability;

/// <summary>The framework's own meter factory, for components built directly in unit tests.</summary>
internal static class TestMeters
{
    private static readonly IMeterFactory Factory = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();

    public static RoutingMetrics Routing() => new(Factory, new WorkerLoadBoard(TimeProvider.System));
}
