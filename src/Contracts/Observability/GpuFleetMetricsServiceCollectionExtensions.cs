using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The metrics pipeline shared by the worker and the gateway: the component's own meter plus the standard ASP.NET Core,
/// Kestrel, HttpClient and .NET runtime instruments, exported for Prometheus (each process maps the scrape endpoint
/// with <c>MapPrometheusScrapingEndpoint("/metrics")</c>).
/// </summary>
public static class GpuFleetMetricsServiceCollectionExtensions
{
    /// <summary>
    /// Bucket boundaries in seconds for request-long latencies. The SDK's defaults end at 10 s; a streamed generation
    /// or a long agent prompt's first token takes tens of seconds to minutes, and must still land in a finite bucket.
    /// </summary>
    public static readonly double[] RequestLatencyBuckets =
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600];

    /// <summary>
    /// Adds OpenTelemetry metrics with <paramref name="meterName"/> (the component's instruments), the framework's
    /// instruments, request-duration histograms with <see cref="RequestLatencyBuckets"/> and the Prometheus exporter.
    /// </summary>
    public static IServiceCollection AddGpuFleetMetrics(this IServiceCollection services, string serviceName, string meterName)
    {
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName))
            .WithMetrics(metrics => metrics
                .AddMeter(meterName)
                .AddAspNetCoreInstrumentation()
                .AddMeter("Microsoft.AspNetCore.Server.Kestrel")
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddView("http.server.request.duration", new ExplicitBucketHistogramConfiguration { Boundaries = RequestLatencyBuckets })
                .AddView("http.client.request.duration", new ExplicitBucketHistogramConfiguration { Boundaries = RequestLatencyBuckets })
                // Three runtime gauges end in ".count", which Prometheus reserves for histograms and summaries
                // (promtool check metrics rejects them): the same values under names it accepts.
                .AddView("dotnet.assembly.count", "dotnet.assemblies.loaded")
                .AddView("dotnet.process.cpu.count", "dotnet.process.cpus")
                .AddView("dotnet.timer.count", "dotnet.timers.active")
                // No response cache: a scrape always sees the current values (one scrape costs well under a
                // millisecond, see docs/benchmarks.md), and tests and operators never read a stale copy.
                .AddPrometheusExporter(exporter => exporter.ScrapeResponseCacheDurationMilliseconds = 0));
        return services;
    }
}
