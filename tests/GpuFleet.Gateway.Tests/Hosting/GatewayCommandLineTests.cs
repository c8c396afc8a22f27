using System.Diagnostics;
using System.Globalization;
using System.Text;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Gateway.Hosting;
using GpuFleet.Testing;

namespace GpuFleet.Gateway.Tests.Hosting;

/// <summary>The gateway's one command line: serve options as configuration keys, the keys subcommand, usage errors and help.</summary>
public sealed class GatewayCommandLineTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-cli-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Every_serve_option_sets_its_configuration_key_and_repeatable_ones_set_one_index_each()
    {
        var settings = GatewayCommandLine.Parse([
            "--http-port", "8000", "--grpc-port", "0", "--host", "0.0.0.0", "--keys", "/etc/keys.json", "--redis", "r:6379,password=x",
            "--affinity-key", "a2V5", "--dns-refresh", "5", "--dns-address-family", "Any", "--routing-policy", "round-robin",
            "--worker", "http://a:1", "--workers-dns", "w.svc:8080", "--worker", "http://b:2", "--workers-dns", "v.svc:8080",
        ]);

        Assert.Equal(new Dictionary<string, string?>
        {
            ["Gateway:HttpPort"] = "8000",
            ["Gateway:GrpcPort"] = "0",
            ["Gateway:Host"] = "0.0.0.0",
            ["Gateway:KeysFile"] = "/etc/keys.json",
            ["Redis:Configuration"] = "r:6379,password=x",
            ["Gateway:Routing:AffinityKey"] = "a2V5",
            ["Gateway:DnsRefreshSeconds"] = "5",
            ["Gateway:DnsAddressFamily"] = "Any",
            ["Gateway:Routing:Policy"] = "round-robin",
            ["Gateway:Workers:0"] = "http://a:1",
            ["Gateway:Workers:1"] = "http://b:2",
            ["Gateway:WorkersDns:0"] = "w.svc:8080",
            ["Gateway:WorkersDns:1"] = "v.svc:8080",
        }, settings);
        Assert.Equal(11, GatewayCommandLine.Switches.Count);
        Assert.Empty(GatewayCommandLine.Parse([]));
    }

    [Fact]
    public void An_option_given_twice_takes_its_last_value_and_values_stay_as_written()
    {
        var settings = GatewayCommandLine.Parse(["--http-port", "1", "--redis", "@not-a-response-file", "--http-port", "2"]);

        Assert.Equal("2", settings["Gateway:HttpPort"]);
        Assert.Equal("@not-a-response-file", settings["Redis:Configuration"]);
    }

    [Theory]
    [InlineData("Unrecognized command or argument '--color'", "--color", "red")]
    [InlineData("Required argument missing for option: '--http-port'", "--worker", "http://a:1", "--http-port")]
    [InlineData("Unrecognized command or argument 'stray'", "stray")]
    [InlineData("Unrecognized command or argument 'http://b:2'", "--worker", "http://a:1", "http://b:2")]
    [InlineData("Unrecognized command or argument 'frobnicate'", "keys", "frobnicate")]
    [InlineData("'bad name' is not a valid key name", "keys", "add", "bad name", "--keys", "FILE")]
    [InlineData("--rpm must be a whole number of at least 1, not 'many'", "keys", "add", "alice", "--rpm", "many", "--keys", "FILE")]
    [InlineData("--tpm is given twice", "keys", "add", "alice", "--tpm", "1", "--tpm", "2", "--keys", "FILE")]
    [InlineData("Unrecognized command or argument '--rpm'", "keys", "list", "--rpm", "5", "--keys", "FILE")]
    [InlineData("Required argument 'name' missing", "keys", "remove", "--keys", "FILE")]
    [InlineData("Required command was not provided", "keys")]
    [InlineData("--keys is an option of the gateway, not of 'keys'", "--keys", "FILE", "keys", "list")]
    [InlineData("--http-port is an option of the gateway, not of 'keys'", "--http-port", "1", "keys", "add", "alice", "--keys", "FILE")]
    public async Task A_usage_error_exits_2_naming_the_problem_with_the_usage_on_stderr_and_runs_nothing(string problem, params string[] args)
    {
        args = [.. args.Select(a => a == "FILE" ? Path.Combine(_directory, "keys.json") : a)];
        var (exit, stdout, stderr, served) = await RunAsync(args);

        Assert.Equal(2, exit);
        Assert.Null(served);
        Assert.Equal("", stdout);
        Assert.Contains(problem, stderr, StringComparison.Ordinal);
        Assert.Contains("Usage:", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_directory, "keys.json")));
        Assert.Throws<ArgumentException>(() => GatewayCommandLine.Parse(args));
    }

    [Fact]
    public async Task Help_exits_0_with_every_option_and_the_keys_command_on_stdout()
    {
        var (exit, stdout, stderr, served) = await RunAsync(["--help"]);

        Assert.Equal(0, exit);
        Assert.Null(served);
        Assert.Equal("", stderr);
        foreach (var (option, key) in GatewayCommandLine.Switches)
        {
            Assert.Contains(option, stdout, StringComparison.Ordinal);
            Assert.Contains(key, stdout, StringComparison.Ordinal);
        }

        Assert.Contains("keys", stdout, StringComparison.Ordinal);

        foreach (var keysHelp in new[] { new[] { "keys", "help" }, ["keys", "--help"] })
        {
            (exit, stdout, _, _) = await RunAsync(keysHelp);
            Assert.Equal(0, exit);
            Assert.Contains("Usage:", stdout, StringComparison.Ordinal);
            Assert.Contains("remove <name>", stdout, StringComparison.Ordinal);
        }

        (exit, stdout, _, _) = await RunAsync(["keys", "add", "-h"]);
        Assert.Equal(0, exit);
        Assert.Contains("--rpm <N>", stdout, StringComparison.Ordinal);
        Assert.Contains("--keys <FILE>", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_serve_options_reach_the_gateway_and_keys_runs_its_subcommand()
    {
        var (exit, _, _, served) = await RunAsync(["--worker", "http://a:1", "--http-port", "9"]);
        Assert.Equal(17, exit);
        Assert.Equal(new Dictionary<string, string?> { ["Gateway:Workers:0"] = "http://a:1", ["Gateway:HttpPort"] = "9" }, served);

        var file = Path.Combine(_directory, "keys.json");
        (exit, var key, _, served) = await RunAsync(["keys", "add", "ci", "--rpm", "5", "--keys", file]);
        Assert.Equal(0, exit);
        Assert.Null(served);
        Assert.StartsWith("gf-", key, StringComparison.Ordinal);
        (exit, var list, _, _) = await RunAsync(["keys", "list", "--keys", file]);
        Assert.Equal(0, exit);
        Assert.Matches(@"ci\s+5\s+unlimited", list);
        Assert.Throws<ArgumentException>(() => GatewayCommandLine.Parse(["keys", "list", "--keys", file]));
    }

    [Fact]
    public async Task The_gateway_process_exits_2_on_a_usage_error_0_on_help_and_0_when_terminated()
    {
        var (exit, output) = await RunGatewayToExitAsync("--http-port", "1", "--bogus", "x");
        Assert.True(exit == 2, output);
        Assert.Contains("'--bogus'", output, StringComparison.Ordinal);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);

        (exit, output) = await RunGatewayToExitAsync("--help");
        Assert.True(exit == 0, output);
        Assert.Contains("--workers-dns", output, StringComparison.Ordinal);

        // SIGTERM stays ASP.NET Core's to handle (a drained, clean stop), not the command-line parser's.
        await using var gateway = await GatewayProcess.StartAsync("--worker", $"http://127.0.0.1:{FreePort.Next()}");
        gateway.Terminate();
        Assert.True(await gateway.WaitForExitAsync() == 0, gateway.Output);
    }

    private static async Task<(int Exit, string Stdout, string Stderr, Dictionary<string, string?>? Served)> RunAsync(string[] args)
    {
        using var stdout = new StringWriter(new StringBuilder(), CultureInfo.InvariantCulture);
        using var stderr = new StringWriter(new StringBuilder(), CultureInfo.InvariantCulture);
        Dictionary<string, string?>? served = null;
        var exit = await GatewayCommandLine.RunAsync(args, settings =>
        {
            served = settings;
            return Task.FromResult(17);
        }, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString(), served);
    }

    private static async Task<(int Exit, string Output)> RunGatewayToExitAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "GpuFleet.Gateway.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TestTimeouts.Default);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
