using System.Globalization;
using GpuFleet.Gateway.Routing;

namespace GpuFleet.Bench.Routing;

/// <summary>Options of <c>routing</c>; every time and rate is in modelled (GPU) seconds.</summary>
internal sealed record RoutingBenchOptions
{
    public const string Usage = "routing [--workers 16] [--load 0.8] [--seconds 90] [--speedup 5] [--seed 1] [--slots 4] " +
        "[--policies a,b,...] [--workloads mix,skewed,agent,chat,batch,llmd] [--plot-loads 0.4,0.6,0.8] [--plot-dir docs]";

    public int Workers { get; init; } = 16;

    /// <summary>Session arrival rate as a fraction of the fleet's capacity (ideal caching, full decode batches).</summary>
    public double Load { get; init; } = 0.8;

    /// <summary>Modelled seconds over which sessions arrive; they send until 1.5 times this (then requests in flight finish).</summary>
    public double Seconds { get; init; } = 90;

    /// <summary>Modelled time runs this many times faster than real time on every worker.</summary>
    public double Speedup { get; init; } = 5;

    public int Seed { get; init; } = 1;

    public int Slots { get; init; } = 4;

    /// <summary>Baselines first, GpuFleet's last: each later run finds the fleet's caches full of earlier runs' prefixes, as ours does.</summary>
    public IReadOnlyList<string> Policies { get; init; } = [.. ConfiguredRoutingPolicy.Names.Skip(1), RoutingOptions.DefaultPolicy];

    public IReadOnlyList<WorkloadKind> Workloads { get; init; } = [WorkloadKind.Mix, WorkloadKind.Skewed];

    /// <summary>Further loads of the agent-heavy mix for the TTFT-against-load plot (none: no plot).</summary>
    public IReadOnlyList<double> PlotLoads { get; init; } = [];

    public string PlotDirectory { get; init; } = "docs";

    public static RoutingBenchOptions Parse(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new RoutingBenchOptions();
        for (var i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length)
            {
                throw new ArgumentException($"{args[i]} needs a value.");
            }

            var value = args[i + 1];
            options = args[i] switch
            {
                "--workers" => options with { Workers = Int(args[i], value, 1, 64) },
                "--load" => options with { Load = Real(args[i], value, 0.01, 2) },
                "--seconds" => options with { Seconds = Real(args[i], value, 1, 36_000) },
                "--speedup" => options with { Speedup = Real(args[i], value, 0.1, 1000) },
                "--seed" => options with { Seed = Int(args[i], value, 0, int.MaxValue) },
                "--slots" => options with { Slots = Int(args[i], value, 1, 64) },
                "--policies" => options with { Policies = PolicyList(value) },
                "--workloads" => options with { Workloads = [.. value.Split(',').Select(Workload)] },
                "--plot-loads" => options with { PlotLoads = [.. value.Split(',').Select(v => Real("--plot-loads", v, 0.01, 2))] },
                "--plot-dir" => options with { PlotDirectory = value },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'."),
            };
        }

        return options;
    }

    private static List<string> PolicyList(string value)
    {
        var names = value.Split(',').ToList();
        var unknown = names.Where(n => !ConfiguredRoutingPolicy.Names.Contains(n)).ToList();
        return unknown.Count == 0 ? names
            : throw new ArgumentException($"Unknown policies {string.Join(", ", unknown)}; known: {string.Join(", ", ConfiguredRoutingPolicy.Names)}.");
    }

    private static WorkloadKind Workload(string value) => Enum.TryParse<WorkloadKind>(value, ignoreCase: true, out var kind)
        ? kind : throw new ArgumentException($"Unknown workload '{value}'; known: {string.Join(", ", Enum.GetNames<WorkloadKind>()).ToLowerInvariant()}.");

    private static int Int(string name, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n : throw new ArgumentException($"{name} must be an integer from {min} to {max}, not '{value}'.");

    private static double Real(string name, string value, double min, double max) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n : throw new ArgumentException($"{name} must be a number from {min} to {max}, not '{value}'.");
}
