namespace GpuFleet.Gateway.Hosting;

/// <summary>Maps the gateway's switches to configuration keys; <c>--worker</c> and <c>--workers-dns</c> may repeat.</summary>
internal static class GatewayCommandLine
{
    internal static readonly Dictionary<string, string> Switches = new(StringComparer.Ordinal)
    {
        ["--http-port"] = "Gateway:HttpPort",
        ["--grpc-port"] = "Gateway:GrpcPort",
        ["--host"] = "Gateway:Host",
        ["--keys"] = "Gateway:KeysFile",
        // A StackExchange.Redis configuration string: host:port, or several endpoints with password=, ssl=true, serviceName=...
        ["--redis"] = "Redis:Configuration",
        // The prefix-hash key shared by replicas; in production prefer the environment (Gateway__Routing__AffinityKey, a Secret).
        ["--affinity-key"] = "Gateway:Routing:AffinityKey",
        ["--dns-refresh"] = "Gateway:DnsRefreshSeconds",
        ["--dns-address-family"] = "Gateway:DnsAddressFamily",
        // Benchmarks only: the anchors' policies as baselines (src/Gateway/Routing/Peers); the default is GpuFleet's.
        ["--routing-policy"] = "Gateway:Routing:Policy",
    };

    public static Dictionary<string, string?> Parse(string[] args)
    {
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal);
        var workers = 0;
        var workersDns = 0;
        for (var i = 0; i < args.Length; i++)
        {
            if (i + 1 >= args.Length)
            {
                throw new ArgumentException($"Option {args[i]} needs a value.");
            }

            if (args[i] == "--worker")
            {
                settings[$"Gateway:Workers:{workers++}"] = args[++i];
            }
            else if (args[i] == "--workers-dns")
            {
                settings[$"Gateway:WorkersDns:{workersDns++}"] = args[++i];
            }
            else if (Switches.TryGetValue(args[i], out var key))
            {
                settings[key] = args[++i];
            }
            else
            {
                throw new ArgumentException($"Unknown option '{args[i]}'. Usage: --http-port N --grpc-port N [--worker URL ...] [--workers-dns NAME:PORT ...] [--dns-refresh SECONDS] [--dns-address-family IPv4|IPv6|Any] [--redis HOST:PORT[,OPTION=VALUE...]] [--keys FILE] [--host ADDRESS] [--routing-policy NAME]");
            }
        }

        return settings;
    }
}
