namespace GpuFleet.Gateway.Hosting;

/// <summary>Gateway settings, bound from configuration section <c>Gateway</c>.</summary>
internal sealed class GatewayOptions
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

    /// <summary>
    /// Worker pools found in DNS as <c>NAME:PORT</c> (e.g. a Kubernetes headless Service): every address of NAME is a
    /// worker at <c>http://ADDRESS:PORT</c>; <c>--workers-dns</c> on the command line, repeatable.
    /// </summary>
    public List<string> WorkersDns { get; set; } = [];

    /// <summary>Seconds between re-resolutions of <see cref="WorkersDns"/>; default 10.</summary>
    public int DnsRefreshSeconds { get; set; } = 10;

    /// <summary>
    /// Which of a DNS name's addresses become workers: IPv4 (default: <c>localhost</c> also resolves to <c>::1</c>, and
    /// workers usually bind one IPv4 address), IPv6, or Any.
    /// </summary>
    public WorkerDnsAddressFamily DnsAddressFamily { get; set; } = WorkerDnsAddressFamily.IPv4;

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

        for (var i = 0; i < Workers.Count; i++)
        {
            if (!Uri.TryCreate(Workers[i], UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                errors.Add($"Gateway:Workers:{i} must be an http(s) URL, not '{Workers[i]}'.");
            }
        }

        for (var i = 0; i < WorkersDns.Count; i++)
        {
            if (!TryParseDnsEntry(WorkersDns[i], out _, out _))
            {
                errors.Add($"Gateway:WorkersDns:{i} must be NAME:PORT with a port from 1 to 65535, not '{WorkersDns[i]}'.");
            }
        }

        if (DnsRefreshSeconds is < 1 or > 3600)
        {
            errors.Add($"Gateway:DnsRefreshSeconds must be between 1 and 3600, not {DnsRefreshSeconds}.");
        }

        if (!Enum.IsDefined(DnsAddressFamily))
        {
            errors.Add($"Gateway:DnsAddressFamily must be IPv4, IPv6 or Any, not '{DnsAddressFamily}'.");
        }

        return errors;
    }

    /// <summary>
    /// The gateway needs at least one worker source: static URLs, DNS names, or the Redis registry (read whenever
    /// <c>Redis:Configuration</c> is set). Separate from <see cref="Validate"/> because Redis is another section.
    /// </summary>
    public IReadOnlyList<string> ValidateSources(bool redisConfigured) =>
        Workers.Count == 0 && WorkersDns.Count == 0 && !redisConfigured
            ? ["The gateway has no worker source: give worker URLs (Gateway:Workers, --worker http://host:port), DNS names (Gateway:WorkersDns, --workers-dns NAME:PORT) or a Redis registry (Redis:Configuration, --redis HOST:PORT or a StackExchange.Redis configuration string)."]
            : [];

    /// <summary>Splits a <see cref="WorkersDns"/> entry: <c>NAME:PORT</c>, the port from 1 to 65535.</summary>
    public static bool TryParseDnsEntry(string? entry, out string host, out int port)
    {
        host = "";
        port = 0;
        var colon = entry?.LastIndexOf(':') ?? -1;
        if (colon <= 0 || !int.TryParse(entry.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port)
            || port is < 1 or > 65535)
        {
            return false;
        }

        host = entry![..colon];
        return Uri.CheckHostName(host) is UriHostNameType.Dns or UriHostNameType.IPv4;
    }
}
