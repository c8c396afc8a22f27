namespace GpuFleet.Gateway.Hosting;

/// <summary>Maps the gateway's switches to configuration keys; <c>--worker</c> may repeat.</summary>
internal static class GatewayCommandLine
{
    private static readonly Dictionary<string, string> Switches = new(StringComparer.Ordinal)
    {
        ["--http-port"] = "Gateway:HttpPort",
        ["--grpc-port"] = "Gateway:GrpcPort",
        ["--host"] = "Gateway:Host",
        ["--keys"] = "Gateway:KeysFile",
        ["--redis"] = "Redis:Endpoint",
    };

    public static Dictionary<string, string?> Parse(string[] args)
    {
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal);
        var workers = 0;
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
            else if (Switches.TryGetValue(args[i], out var key))
            {
                settings[key] = args[++i];
            }
            else
            {
                throw new ArgumentException($"Unknown option '{args[i]}'. Usage: --http-port N --grpc-port N --worker URL [--worker URL ...] [--redis HOST:PORT] [--keys FILE] [--host ADDRESS]");
            }
        }

        return settings;
    }
}
