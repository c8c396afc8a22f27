using System.Net;
using System.Net.Sockets;
using GpuFleet.Gateway.Destinations;
using GpuFleet.Gateway.Hosting;
using GpuFleet.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace GpuFleet.Gateway.Tests.Destinations;

/// <summary>The directory's merging and change logic, and the DNS source on a scripted resolver and virtual time.</summary>
public sealed class WorkerDirectoryTests
{
    [Fact]
    public void Static_workers_are_the_first_set_named_by_host_and_port()
    {
        var directory = Directory(new GatewayOptions { Workers = ["http://10.0.0.2:8080/", "http://10.0.0.1:8080"] });

        Assert.Equal(0, directory.Current.Version);
        Assert.Equal(
            [new WorkerEndpoint("10.0.0.1:8080", "http://10.0.0.1:8080", WorkerSource.Static), new WorkerEndpoint("10.0.0.2:8080", "http://10.0.0.2:8080", WorkerSource.Static)],
            directory.Current.Workers);
    }

    [Fact]
    public void A_new_worker_publishes_a_new_set_and_fires_the_old_sets_change_token()
    {
        var directory = Directory(new GatewayOptions { Workers = ["http://10.0.0.1:8080"] });
        var first = directory.Current;
        var fired = 0;
        using var callback = first.ChangeToken.RegisterChangeCallback(_ => fired++, null);

        Assert.True(directory.Update(WorkerSource.Registry, ["http://10.0.0.9:8080"]));

        Assert.Equal(1, fired);
        Assert.True(first.IsSuperseded);
        Assert.Equal(1, directory.Current.Version);
        Assert.False(directory.Current.ChangeToken.HasChanged);
        Assert.Equal(["10.0.0.1:8080", "10.0.0.9:8080"], directory.Current.Workers.Select(w => w.Destination));
    }

    [Fact]
    public void An_update_that_changes_nothing_keeps_the_version_and_the_token()
    {
        var directory = Directory(new GatewayOptions());
        Assert.True(directory.Update(WorkerSource.Dns, ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]));
        var set = directory.Current;

        // Same workers in another order, with a trailing slash and a duplicate: the same set.
        Assert.False(directory.Update(WorkerSource.Dns, ["http://10.0.0.2:8080/", "http://10.0.0.1:8080", "http://10.0.0.1:8080"]));

        Assert.Same(set, directory.Current);
        Assert.False(set.ChangeToken.HasChanged);
    }

    [Fact]
    public void One_destination_from_two_sources_is_one_worker_and_the_higher_priority_source_keeps_it()
    {
        var directory = Directory(new GatewayOptions { Workers = ["http://10.0.0.1:8080"] });
        directory.Update(WorkerSource.Registry, ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]);
        directory.Update(WorkerSource.Dns, ["http://10.0.0.2:8080"]);

        Assert.Equal(
            [("10.0.0.1:8080", WorkerSource.Static), ("10.0.0.2:8080", WorkerSource.Dns)],
            directory.Current.Workers.Select(w => (w.Destination, w.Source)));

        // The registry losing a worker that DNS still has changes only who owns it.
        directory.Update(WorkerSource.Registry, []);
        Assert.Equal(["10.0.0.1:8080", "10.0.0.2:8080"], directory.Current.Workers.Select(w => w.Destination));
    }

    [Fact]
    public void A_source_that_drops_a_worker_removes_it_and_leaves_the_other_sources_alone()
    {
        var directory = Directory(new GatewayOptions { Workers = ["http://10.0.0.1:8080"] });
        directory.Update(WorkerSource.Registry, ["http://10.0.0.2:8080", "http://10.0.0.3:8080"]);

        Assert.True(directory.Update(WorkerSource.Registry, ["http://10.0.0.3:8080"]));

        Assert.Equal(["10.0.0.1:8080", "10.0.0.3:8080"], directory.Current.Workers.Select(w => w.Destination));
        Assert.Equal(2, directory.Current.Version);
    }

    [Fact]
    public void Urls_that_are_not_absolute_http_are_ignored()
    {
        var directory = Directory(new GatewayOptions { Workers = ["not a url", "ftp://10.0.0.1:21"] });
        directory.Update(WorkerSource.Registry, ["", "10.0.0.5:8080", "https://10.0.0.6:8443"]);

        Assert.Equal(["10.0.0.6:8443"], directory.Current.Workers.Select(w => w.Destination));
    }

    [Fact]
    public async Task WaitForNextAsync_completes_when_the_set_changes_and_honours_cancellation()
    {
        var directory = Directory(new GatewayOptions());
        var set = directory.Current;
        var waiting = set.WaitForNextAsync(TestTimeouts.Token());
        Assert.False(waiting.IsCompleted);

        directory.Update(WorkerSource.Dns, ["http://10.0.0.1:8080"]);
        await waiting.WithTimeout();

        using var cancelled = new CancellationTokenSource();
        var never = directory.Current.WaitForNextAsync(cancelled.Token);
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => never);
    }

    [Fact]
    public async Task Dns_every_IPv4_address_of_a_name_is_a_worker_and_IPv6_is_left_out_by_default()
    {
        var resolver = new ScriptedResolver();
        resolver.Answer("localhost", "127.0.0.1", "::1");
        resolver.Answer("workers.gpu.svc", "10.1.0.7", "10.1.0.5", "::ffff:10.1.0.6");
        var options = new GatewayOptions { Workers = ["http://10.0.0.1:8080"], WorkersDns = ["localhost:9000", "workers.gpu.svc:8080"] };
        var directory = Directory(options);

        Assert.True(await Source(options, directory, resolver).RefreshAsync(TestTimeouts.Token()));

        Assert.Equal(
            ["10.0.0.1:8080", "10.1.0.5:8080", "10.1.0.6:8080", "10.1.0.7:8080", "127.0.0.1:9000"],
            directory.Current.Workers.Select(w => w.Destination));
        Assert.Equal("http://127.0.0.1:9000", directory.Current.Workers.Single(w => w.Destination == "127.0.0.1:9000").Url);
    }

    [Fact]
    public async Task Dns_family_any_takes_IPv6_addresses_in_brackets()
    {
        var resolver = new ScriptedResolver();
        resolver.Answer("localhost", "127.0.0.1", "::1");
        var options = new GatewayOptions { WorkersDns = ["localhost:9000"], DnsAddressFamily = WorkerDnsAddressFamily.Any };
        var directory = Directory(options);

        await Source(options, directory, resolver).RefreshAsync(TestTimeouts.Token());

        Assert.Equal(["127.0.0.1:9000", "[::1]:9000"], directory.Current.Workers.Select(w => w.Destination));
        Assert.Contains(directory.Current.Workers, w => w.Url == "http://[::1]:9000");
    }

    [Fact]
    public async Task Dns_a_failed_resolution_keeps_the_last_known_workers_until_it_resolves_again()
    {
        var resolver = new ScriptedResolver();
        resolver.Answer("workers.gpu.svc", "10.1.0.1", "10.1.0.2");
        var options = new GatewayOptions { WorkersDns = ["workers.gpu.svc:8080"] };
        var directory = Directory(options);
        var source = Source(options, directory, resolver);
        await source.RefreshAsync(TestTimeouts.Token());
        var known = directory.Current;

        resolver.Fail("workers.gpu.svc");
        Assert.False(await source.RefreshAsync(TestTimeouts.Token()));
        resolver.Answer("workers.gpu.svc", "::1"); // only an address of the wrong family: kept as well
        Assert.False(await source.RefreshAsync(TestTimeouts.Token()));
        Assert.Same(known, directory.Current);

        resolver.Answer("workers.gpu.svc", "10.1.0.2", "10.1.0.3");
        Assert.True(await source.RefreshAsync(TestTimeouts.Token()));
        Assert.Equal(["10.1.0.2:8080", "10.1.0.3:8080"], directory.Current.Workers.Select(w => w.Destination));
    }

    [Fact]
    public async Task Dns_names_are_resolved_at_start_and_again_every_DnsRefreshSeconds()
    {
        var time = new ManualTimeProvider();
        var resolver = new ScriptedResolver();
        resolver.Answer("workers.gpu.svc", "10.1.0.1");
        var options = new GatewayOptions { WorkersDns = ["workers.gpu.svc:8080"], DnsRefreshSeconds = 10 };
        var directory = Directory(options);
        using var source = Source(options, directory, resolver, time);

        await source.StartAsync(TestTimeouts.Token());
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(directory.Current.Workers.Count == 1 && time.ActiveTimers == 1));
        Assert.Equal(1, resolver.Calls);

        resolver.Answer("workers.gpu.svc", "10.1.0.1", "10.1.0.2");
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(1, resolver.Calls);
        time.Advance(TimeSpan.FromSeconds(1));
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(directory.Current.Workers.Count == 2));
        Assert.Equal(2, resolver.Calls);

        await source.StopAsync(TestTimeouts.Token());
    }

    [Fact]
    public void Options_without_any_worker_source_are_refused_naming_all_three()
    {
        var error = Assert.Single(new GatewayOptions().ValidateSources(redisConfigured: false));
        Assert.Contains("Gateway:Workers", error, StringComparison.Ordinal);
        Assert.Contains("Gateway:WorkersDns", error, StringComparison.Ordinal);
        Assert.Contains("Redis:Configuration", error, StringComparison.Ordinal);

        Assert.Empty(new GatewayOptions().ValidateSources(redisConfigured: true));
        Assert.Empty(new GatewayOptions { WorkersDns = ["workers:8080"] }.ValidateSources(redisConfigured: false));
        Assert.Empty(new GatewayOptions { Workers = ["http://10.0.0.1:8080"] }.ValidateSources(redisConfigured: false));
    }

    [Fact]
    public void Options_name_every_bad_dns_setting()
    {
        var errors = new GatewayOptions { WorkersDns = ["workers", "workers:0", "workers:8080", "bad name:80"], DnsRefreshSeconds = 0 }.Validate();

        Assert.Contains(errors, e => e.StartsWith("Gateway:WorkersDns:0 ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:WorkersDns:1 ", StringComparison.Ordinal));
        Assert.DoesNotContain(errors, e => e.StartsWith("Gateway:WorkersDns:2 ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:WorkersDns:3 ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:DnsRefreshSeconds ", StringComparison.Ordinal));
    }

    private static WorkerDirectory Directory(GatewayOptions options) => new(Options.Create(options));

    private static DnsWorkerSource Source(GatewayOptions options, WorkerDirectory directory, IWorkerAddressResolver resolver, TimeProvider? time = null) =>
        new(Options.Create(options), directory, resolver, time ?? TimeProvider.System, NullLogger<DnsWorkerSource>.Instance);

    /// <summary>A resolver that answers what the test set, or fails like a missing name does.</summary>
    private sealed class ScriptedResolver : IWorkerAddressResolver
    {
        private readonly Dictionary<string, IPAddress[]?> _answers = new(StringComparer.Ordinal);
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public void Answer(string host, params string[] addresses)
        {
            lock (_answers)
            {
                _answers[host] = [.. addresses.Select(IPAddress.Parse)];
            }
        }

        public void Fail(string host)
        {
            lock (_answers)
            {
                _answers[host] = null;
            }
        }

        public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            lock (_answers)
            {
                return _answers.TryGetValue(host, out var addresses) && addresses is not null
                    ? Task.FromResult(addresses)
                    : Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound));
            }
        }
    }
}
