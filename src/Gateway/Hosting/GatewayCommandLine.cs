using System.CommandLine;
using GpuFleet.Gateway.Auth;

namespace GpuFleet.Gateway.Hosting;

/// <summary>
/// The gateway process's one command line (System.CommandLine): the serve options, each only a way to set one
/// configuration key (so environment variables and appsettings set the same things, and options validation at start
/// judges every source alike), and the <c>keys</c> subcommand (<see cref="KeysCommand"/>). A usage error exits 2 with
/// the problem and the usage on stderr; <c>--help</c> exits 0 with the usage on stdout.
/// </summary>
internal static class GatewayCommandLine
{
    /// <summary>The exit code of a command line that cannot be run as given.</summary>
    public const int UsageError = 2;

    private static readonly ServeSwitch[] ServeSwitches =
    [
        new("--http-port", "Gateway:HttpPort", "N", "Port of the OpenAI API (HTTP/1.1); default 8000."),
        new("--grpc-port", "Gateway:GrpcPort", "N", "Port of the gRPC services (h2c), forwarded to the workers' gRPC ports; 0 turns it off; default 8001."),
        new("--host", "Gateway:Host", "ADDRESS", "IP address to listen on; default 127.0.0.1."),
        new("--worker", "Gateway:Workers", "URL", "A worker's base URL (its HTTP port), e.g. http://10.0.0.5:8080; repeatable.", Repeatable: true),
        new("--workers-dns", "Gateway:WorkersDns", "NAME:PORT", "Every address of NAME is a worker at http://ADDRESS:PORT (e.g. a headless Service); repeatable.", Repeatable: true),
        new("--dns-refresh", "Gateway:DnsRefreshSeconds", "SECONDS", "Seconds between re-resolutions of --workers-dns; default 10."),
        new("--dns-address-family", "Gateway:DnsAddressFamily", "IPv4|IPv6|Any", "Which addresses of a --workers-dns name become workers; default IPv4."),
        // A StackExchange.Redis configuration string: host:port, or several endpoints with password=, ssl=true, serviceName=...
        new("--redis", "Redis:Configuration", "HOST:PORT[,OPTION=VALUE...]", "Redis shared by the gateway replicas (affinity, limits, worker registry); optional."),
        new("--keys", "Gateway:KeysFile", "FILE", "The API keys file (written by 'keys add'); without it the gateway is open to anyone."),
        // The prefix-hash key shared by replicas; in production prefer the environment (Gateway__Routing__AffinityKey, a Secret).
        new("--affinity-key", "Gateway:Routing:AffinityKey", "BASE64", "Prefix-hash key shared by the gateway replicas; prefer the environment (a Secret)."),
        // Benchmarks only: the anchors' policies as baselines (src/Gateway/Routing/Peers); the default is GpuFleet's.
        new("--routing-policy", "Gateway:Routing:Policy", "NAME", "Benchmarks only: another load-balancing policy as a baseline."),
    ];

    // Response files (@FILE) are off: a value starting with '@' stays what it says. Bundling concerns one-letter
    // options only, which the gateway has none of.
    private static readonly ParserConfiguration Parsing = new() { ResponseFileTokenReplacer = null, EnablePosixBundling = false };

    /// <summary>
    /// Every serve option and the configuration key it sets; a repeatable one sets <c>KEY:0</c>, <c>KEY:1</c>... in
    /// the order given. Deploy tests check the manifests against these.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, string> Switches = ServeSwitches.ToDictionary(s => s.Name, s => s.Key, StringComparer.Ordinal);

    /// <summary>
    /// Runs the command line: <paramref name="serve"/> with the configuration the serve options set, or a
    /// <c>keys</c> subcommand, or the help; <see cref="UsageError"/> when the command line cannot be run as given.
    /// </summary>
    public static Task<int> RunAsync(string[] args, Func<Dictionary<string, string?>, Task<int>> serve, TextWriter stdout, TextWriter stderr) =>
        InvokeAsync(CreateRoot(serve), args, stdout, stderr);

    /// <summary>The configuration the serve options set; throws <see cref="ArgumentException"/> naming the problems of any other command line.</summary>
    public static Dictionary<string, string?> Parse(string[] args)
    {
        // Parsed only: the serve action never runs here.
        var result = CreateRoot(static _ => Task.FromResult(0)).Parse(args, Parsing);
        if (result.Errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", result.Errors.Select(e => e.Message)));
        }

        return result.CommandResult.Command is RootCommand
            ? Settings(result)
            : throw new ArgumentException($"'{result.CommandResult.Command.Name}' is a subcommand, not the gateway's serve options.");
    }

    /// <summary>
    /// Parses <paramref name="args"/> against <paramref name="command"/> and runs the command reached; on a usage error
    /// writes each problem and that command's usage to <paramref name="stderr"/> and returns <see cref="UsageError"/>.
    /// </summary>
    internal static async Task<int> InvokeAsync(Command command, string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var result = command.Parse(args, Parsing);
        var invocation = new InvocationConfiguration
        {
            Output = result.Errors.Count == 0 ? stdout : stderr,
            Error = stderr,
            // Exceptions and signals stay the host's: ASP.NET Core drains on SIGTERM, and System.CommandLine's handling
            // would cancel the action and end the process 2 s later, or turn a crash into a printed exit code 1.
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null,
        };
        if (result.Errors.Count == 0)
        {
            return await result.InvokeAsync(invocation);
        }

        // System.CommandLine's error action writes the problems (to Error) and the usage (to Output, here stderr too),
        // then returns 1; the gateway's usage errors have always exited 2.
        await result.InvokeAsync(invocation);
        return UsageError;
    }

    private static RootCommand CreateRoot(Func<Dictionary<string, string?>, Task<int>> serve)
    {
        ArgumentNullException.ThrowIfNull(serve);
        var root = new RootCommand("GpuFleet gateway: the OpenAI API and the workers' gRPC services in front of a fleet of llama.cpp workers. " +
            "Every option is also configuration (Gateway:*, Redis:Configuration), so environment variables (Gateway__HttpPort) and appsettings.json work too.");
        var serveOptions = ServeSwitches.Select(s => s.CreateOption()).ToList();
        foreach (var option in serveOptions)
        {
            root.Options.Add(option);
        }

        var keys = KeysCommand.Create();
        root.Subcommands.Add(keys);
        // Serve options mean nothing to `keys`: refused rather than ignored (`--keys FILE keys list` would otherwise list
        // the default file). System.CommandLine validates the command reached, so each of keys' commands checks.
        foreach (var command in keys.Subcommands.Prepend(keys))
        {
            command.Validators.Add(result =>
            {
                foreach (var option in serveOptions)
                {
                    if (result.GetResult(option) is { Implicit: false })
                    {
                        result.AddError($"{option.Name} is an option of the gateway, not of 'keys'; options of 'keys' come after its subcommand.");
                    }
                }
            });
        }

        root.SetAction(result => serve(Settings(result)));
        return root;
    }

    private static Dictionary<string, string?> Settings(ParseResult result)
    {
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var serveSwitch in ServeSwitches)
        {
            if (serveSwitch.Repeatable)
            {
                var values = result.GetValue<string[]>(serveSwitch.Name) ?? [];
                for (var i = 0; i < values.Length; i++)
                {
                    settings[$"{serveSwitch.Key}:{i}"] = values[i];
                }
            }
            else if (result.GetValue<string>(serveSwitch.Name) is { } value)
            {
                settings[serveSwitch.Key] = value;
            }
        }

        return settings;
    }

    private sealed record ServeSwitch(string Name, string Key, string HelpName, string Description, bool Repeatable = false)
    {
        // Values stay text: configuration binding and the options' validation at start judge them, as they judge the
        // same keys from the environment.
        public Option CreateOption() => Repeatable
            ? new Option<string[]>(Name) { HelpName = HelpName, Description = $"{Description} ({Key})" }
            : new Option<string>(Name)
            {
                HelpName = HelpName,
                Description = $"{Description} ({Key})",
                // Given twice, the last one wins (as it always has), so a wrapper can override an option by appending it.
                Arity = ArgumentArity.OneOrMore,
                CustomParser = argument => argument.Tokens[^1].Value,
            };
    }
}
