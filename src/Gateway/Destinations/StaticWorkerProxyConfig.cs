using GpuFleet.Gateway.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

namespace GpuFleet.Gateway.Destinations;

/// <summary>
/// YARP configuration from the static worker list: one cluster of workers and one route for the OpenAI API.
/// Destinations are named after their URL so that responses can say which worker served them.
/// </summary>
internal sealed class StaticWorkerProxyConfig(IOptions<GatewayOptions> options) : IProxyConfigProvider
{
    public const string ClusterId = "workers";

    public IProxyConfig GetConfig() => new Config(options.Value.Workers);

    /// <summary>A worker's destination id: the host:port of its HTTP URL.</summary>
    public static string DestinationId(string workerUrl) => new Uri(workerUrl).Authority;

    private sealed class Config(IReadOnlyList<string> workers) : IProxyConfig
    {
        public IReadOnlyList<RouteConfig> Routes { get; } =
        [
            new RouteConfig { RouteId = "openai", ClusterId = ClusterId, Match = new RouteMatch { Path = "/v1/{**rest}" } },
        ];

        public IReadOnlyList<ClusterConfig> Clusters { get; } =
        [
            new ClusterConfig
            {
                ClusterId = ClusterId,
                // Interim policy until the time-to-first-token policy lands: the less busy of two random workers
                // (plain least-requests sends all sequential traffic to one worker, since idle workers tie).
                LoadBalancingPolicy = "PowerOfTwoChoices",
                HealthCheck = new HealthCheckConfig { AvailableDestinationsPolicy = GpuFleet.Gateway.Load.ReadyWorkersPolicy.PolicyName },
                Destinations = workers.ToDictionary(DestinationId, w => new DestinationConfig { Address = w }, StringComparer.Ordinal),
            },
        ];

        public IChangeToken ChangeToken { get; } = new CancellationChangeToken(CancellationToken.None);
    }
}
