namespace GpuFleet.Gateway.Hosting;

/// <summary>Gateway settings, bound from configuration section <c>Gateway</c>.</summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    /// <summary>Address the HTTP port binds to; 127.0.0.1 by default, 0.0.0.0 in containers.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>Port of the OpenAI API (HTTP/1.1).</summary>
    public int HttpPort { get; set; } = 8000;

    /// <summary>Port of the gRPC services (HTTP/2 without TLS), forwarded to the workers' gRPC ports; 0 turns it off.</summary>
    public int GrpcPort { get; set; } = 8001;

    /// <summary>The API keys file (hashes only; <c>keys add</c> writes it). Unset: the gateway runs open and says so.</summary>
    public string? KeysFile { get; set; }

    /// <summary>Worker base URLs (their HTTP ports), e.g. <c>http://10.0.0.5:8080</c>; <c>--worker</c> on the command line.</summary>
    public List<string> Workers { get; set; } = [];

    /// <summary>Every problem with these settings, each naming its key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!System.Net.IPAddress.TryParse(Host, out _))
        {
            errors.Add($"Gateway:Host must be an IP address to bind to, not '{Host}'.");
        }

        if (HttpPort is < 0 or > 65535)
        {
            errors.Add($"Gateway:HttpPort must be between 0 and 65535, not {HttpPort}.");
        }

        if (GrpcPort is < 0 or > 65535 || (GrpcPort != 0 && GrpcPort == HttpPort))
        {
            errors.Add($"Gateway:GrpcPort must be between 0 (off) and 65535 and differ from Gateway:HttpPort, not {GrpcPort}.");
        }

        if (Workers.Count == 0)
        {
            errors.Add("Gateway:Workers is empty: give at least one worker URL (--worker http://host:port).");
        }

        for (var i = 0; i < Workers.Count; i++)
        {
            if (!Uri.TryCreate(Workers[i], UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                errors.Add($"Gateway:Workers:{i} must be an http(s) URL, not '{Workers[i]}'.");
            }
        }

        return errors;
    }
}
