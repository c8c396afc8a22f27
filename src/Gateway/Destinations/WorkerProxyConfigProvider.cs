using System.Net;
using GpuFleet.Gateway.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace GpuFleet.Gateway.Destinations;

/// <summary>
/// YARP configuration from the <see cref="WorkerDirectory"/>: the OpenAI API (route <c>/v1/...</c>) to the workers'
/// HTTP ports, and every gRPC call arriving on the gateway's gRPC port to the workers' gRPC ports (HTTP/2 without TLS),
/// each worker's gRPC address taken from its status. A change of the worker set, or a worker's gRPC address becoming
/// known, is a new configuration (the old one's change token fires). Destinations are named after the worker's HTTP
/// URL in both clusters, so the load view and the routing policy see one worker.
/// </summary>
internal sealed class WorkerProxyConfigProvider : IProxyConfigProvider
{
    public const string ClusterId = "workers";

    public const string GrpcClusterId = "workers-grpc";

    // The gateway's own watch enforces the time-to-first-token and inter-token timeouts; YARP's idle limit only backs it up.
    private static readonly TimeSpan ActivityTimeout = TimeSpan.FromHours(1);

    private readonly WorkerDirectory _directory;
    private readonly IWorkerGrpcAddresses _grpc;
    private readonly WorkerClusterPolicies _policies;
    private readonly int _grpcPort;
    private readonly Lock _gate = new();
    private CancellationTokenSource _grpcChanged = new();
    private IReadOnlyDictionary<string, string> _grpcAddresses = new Dictionary<string, string>(StringComparer.Ordinal);

    public WorkerProxyConfigProvider(WorkerDirectory directory, IWorkerGrpcAddresses grpc, WorkerClusterPolicies policies, IOptions<GatewayOptions> options)
    {
        ArgumentNullException.ThrowIfNull(grpc);
        ArgumentNullException.ThrowIfNull(options);
        _directory = directory;
        _grpc = grpc;
        _policies = policies;
        _grpcPort = options.Value.GrpcPort;
        grpc.Changed += OnGrpcAddressesChanged;
    }

    /// <summary>A worker's destination id: the host:port of its HTTP URL.</summary>
    public static string DestinationId(string workerUrl) => new Uri(workerUrl).Authority;

    public IProxyConfig GetConfig()
    {
        lock (_gate)
        {
            var set = _directory.Current;
            _grpcAddresses = GrpcAddresses(set);
            if (_grpcChanged.IsCancellationRequested)
            {
                _grpcChanged.Dispose();
                _grpcChanged = new CancellationTokenSource();
            }

            return new Config(set, _grpcAddresses, _grpcPort, _policies, new CompositeChangeToken([set.ChangeToken, new CancellationChangeToken(_grpcChanged.Token)]));
        }
    }

    /// <summary>Each worker's gRPC address as it reported it; a worker that reported none serves HTTP only.</summary>
    private Dictionary<string, string> GrpcAddresses(WorkerSet set)
    {
        var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var worker in set.Workers)
        {
            if (_grpc.Find(worker) is { } address)
            {
                addresses[worker.Destination] = address.ToString();
            }
        }

        return addresses;
    }

    private void OnGrpcAddressesChanged()
    {
        lock (_gate)
        {
            var now = GrpcAddresses(_directory.Current);
            if (now.Count != _grpcAddresses.Count || now.Any(a => !_grpcAddresses.TryGetValue(a.Key, out var known) || known != a.Value))
            {
                _grpcChanged.Cancel();
            }
        }
    }

    private sealed class Config(WorkerSet set, IReadOnlyDictionary<string, string> grpc, int grpcPort, WorkerClusterPolicies policies, IChangeToken changeToken) : IProxyConfig
    {
        public IReadOnlyList<RouteConfig> Routes { get; } =
        [
            new RouteConfig { RouteId = "openai", ClusterId = ClusterId, Match = new RouteMatch { Path = "/v1/{**rest}" } },
            .. grpcPort == 0 ? Array.Empty<RouteConfig>() :
            [
                new RouteConfig { RouteId = "grpc", ClusterId = GrpcClusterId, Match = new RouteMatch { Path = "/{**method}", Hosts = [$"*:{grpcPort}"] } },
            ],
        ];

        /// <summary>Ready, non-draining workers get new requests; connection failures put a worker aside (passive health).</summary>
        private static HealthCheckConfig Health(WorkerClusterPolicies policies) => new()
        {
            AvailableDestinationsPolicy = policies.AvailableDestinations,
            Passive = new PassiveHealthCheckConfig { Enabled = true, Policy = policies.PassiveHealth },
        };

        public IReadOnlyList<ClusterConfig> Clusters { get; } =
        [
            new ClusterConfig
            {
                ClusterId = ClusterId,
                // Earliest expected first token from load and cached prefix (docs/gateway-routing.md, "Routing policy").
                LoadBalancingPolicy = policies.LoadBalancing,
                HttpRequest = new ForwarderRequestConfig { ActivityTimeout = ActivityTimeout },
                HealthCheck = Health(policies),
                Destinations = set.Workers.ToDictionary(w => w.Destination, w => new DestinationConfig { Address = w.Url }, StringComparer.Ordinal),
            },
            new ClusterConfig
            {
                ClusterId = GrpcClusterId,
                LoadBalancingPolicy = policies.LoadBalancing,
                HttpRequest = new ForwarderRequestConfig
                {
                    ActivityTimeout = ActivityTimeout,
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                },
                HealthCheck = Health(policies),
                Destinations = grpc.ToDictionary(g => g.Key, g => new DestinationConfig { Address = g.Value }, StringComparer.Ordinal),
            },
        ];

        public IChangeToken ChangeToken { get; } = changeToken;
    }
}
