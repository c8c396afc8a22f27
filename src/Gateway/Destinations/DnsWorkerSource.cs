using System.Net;
using System.Net.Sockets;
using GpuFleet.Gateway.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace GpuFleet.Gateway.Destinations;

/// <summary>
/// Workers from DNS: every address of each <c>Gateway:WorkersDns</c> name (a Kubernetes headless Service has one A
/// record per ready pod) becomes <c>http://ADDRESS:PORT</c>, re-resolved every <c>Gateway:DnsRefreshSeconds</c>.
/// Only addresses of <c>Gateway:DnsAddressFamily</c> count (IPv4 by default: <c>localhost</c> also resolves to
/// <c>::1</c>, where a worker bound to 127.0.0.1 does not listen). A name that fails to resolve, or has no address of
/// that family, keeps its last known workers: a DNS hiccup must not empty the pool. Each change is logged once.
/// </summary>
internal sealed class DnsWorkerSource(
    IOptions<GatewayOptions> options,
    WorkerDirectory directory,
    IWorkerAddressResolver resolver,
    TimeProvider time,
    ILogger<DnsWorkerSource> logger) : BackgroundService
{
    private static readonly TimeSpan ResolveTimeout = TimeSpan.FromSeconds(5);

    // Per configured entry (NAME:PORT): the workers it resolved to last and whether it is failing now.
    private readonly Dictionary<string, NameState> _names = new(StringComparer.Ordinal);

    /// <summary>Resolves every name once and hands the union to the directory; true when the directory's set changed.</summary>
    public async Task<bool> RefreshAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var entries = settings.WorkersDns.Distinct(StringComparer.Ordinal).ToList();
        var results = await Task.WhenAll(entries.Select(entry => ResolveAsync(entry, settings.DnsAddressFamily, cancellationToken)));
        lock (_names)
        {
            for (var i = 0; i < entries.Count; i++)
            {
                Apply(entries[i], results[i]);
            }

            return directory.Update(WorkerSource.Dns, [.. entries.SelectMany(e => _names.TryGetValue(e, out var state) ? state.Urls : [])]);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (settings.WorkersDns.Count == 0)
        {
            return;
        }

        var interval = TimeSpan.FromSeconds(settings.DnsRefreshSeconds);
        try
        {
            while (true)
            {
                await RefreshAsync(stoppingToken);
                await Task.Delay(interval, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private async Task<Resolution> ResolveAsync(string entry, WorkerDnsAddressFamily family, CancellationToken cancellationToken)
    {
        if (!GatewayOptions.TryParseDnsEntry(entry, out var host, out var port))
        {
            return new Resolution(null, $"'{entry}' is not NAME:PORT");
        }

        IPAddress[] addresses;
        try
        {
            addresses = await resolver.ResolveAsync(host, cancellationToken).WaitAsync(ResolveTimeout, time, cancellationToken);
        }
        catch (Exception ex) when (ex is SocketException or TimeoutException or ArgumentException
                                       || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return new Resolution(null, ex.Message);
        }

        var matching = addresses.Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).Where(a => Matches(a, family)).Distinct().ToList();
        if (matching.Count == 0)
        {
            return new Resolution(null, $"no {family} address among the {addresses.Length} it resolved to (see Gateway:DnsAddressFamily)");
        }

        return new Resolution(
            [.. matching.Select(a => new UriBuilder(Uri.UriSchemeHttp, a.ToString(), port).Uri.GetLeftPart(UriPartial.Authority)).Order(StringComparer.Ordinal)],
            null);
    }

    private void Apply(string entry, Resolution result)
    {
        if (!_names.TryGetValue(entry, out var state))
        {
            state = new NameState();
            _names[entry] = state;
        }

        if (result.Urls is { } urls)
        {
            if (state.Failing)
            {
                state.Failing = false;
                DestinationsLog.DnsRecovered(logger, entry);
            }

            if (!state.Resolved || !urls.SequenceEqual(state.Urls, StringComparer.Ordinal))
            {
                state.Urls = urls;
                state.Resolved = true;
                DestinationsLog.DnsResolved(logger, entry, urls.Count, string.Join(", ", urls));
            }
        }
        else if (!state.Failing)
        {
            state.Failing = true;
            DestinationsLog.DnsFailed(logger, entry, result.Failure ?? "unknown", state.Urls.Count);
        }
    }

    private static bool Matches(IPAddress address, WorkerDnsAddressFamily family) => family switch
    {
        WorkerDnsAddressFamily.IPv4 => address.AddressFamily == AddressFamily.InterNetwork,
        WorkerDnsAddressFamily.IPv6 => address.AddressFamily == AddressFamily.InterNetworkV6,
        _ => address.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6,
    };

    private readonly record struct Resolution(IReadOnlyList<string>? Urls, string? Failure);

    private sealed class NameState
    {
        public IReadOnlyList<string> Urls { get; set; } = [];

        public bool Resolved { get; set; }

        public bool Failing { get; set; }
    }
}
