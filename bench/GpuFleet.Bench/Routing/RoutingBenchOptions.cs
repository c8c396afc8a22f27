using GpuFleet.Gateway.Routing;

namespace GpuFleet.Bench.Routing;

/// <summary>Options of <c>routing</c>; every time and rate is in modelled (GPU) seconds.</summary>
internal sealed record RoutingBenchOptions
{
    public const string Usage = "routing [--workers 16] [--load 0.8] [--seconds 90] [--speedup 2] [--seed 1] [--slots 4] " +
        "[--policies a,b,...] [--workloads mix,skewed,agent,chat,batch,llmd] [--plot-loads 0.4,0.6,0.8] [--plot-dir docs] [--requests-csv path]" +
        " | routing --plot-from <requests.csv> [--plot-dir docs]";

    public int Workers { get; init; } = 16;

    /// <summary>Session arrival rate as a fraction of the fleet's capacity (ideal caching, full decode batches).</summary>
    public double Load { get; init; } = 0.8;

    /// <summary>Modelled seconds over which sessions arrive; they send until 1.5 times this (then requests in flight finish).</summary>
    public double Seconds { get; init; } = 90;

    /// <summary>
    /// Modelled time runs this many times faster than real time on every worker. At 5x, 16 workers' streams starve a
    /// 2-core machine (the same sessions completed a third fewer requests than at 2x, inter-token p99 doubled), and the
    /// starvation, multiplied by the speed-up, shows as modelled delay; 2x keeps it small.
    /// </summary>
    public double Speedup { get; init; } = 2;

    public int Seed { get; init; } = 1;

    public int Slots { get; init; } = 4;

    /// <summary>Baselines first, GpuFleet's last: each later run finds the fleet's caches full of earlier runs' prefixes, as ours does.</summary>
    public IReadOnlyList<string> Policies { get; init; } = [.. ConfiguredRoutingPolicy.Names.Skip(1), RoutingOptions.DefaultPolicy];

    public IReadOnlyList<WorkloadKind> Workloads { get; init; } = [WorkloadKind.Mix, WorkloadKind.Skewed];

    /// <summary>Further loads of the agent-heavy mix for the TTFT-against-load plot (none: no plot).</summary>
    public IReadOnlyList<double> PlotLoads { get; init; } = [];

    public string PlotDirectory { get; init; } = "docs";

    /// <summary>Where to write one row per request of every run (none: not written).</summary>
    public string? RequestsCsv { get; init; }

    /// <summary>Runs nothing: draws the plot from a <see cref="RequestsCsv"/> file of an earlier run.</summary>
    public string? PlotFrom { get; init; }

    public static RoutingBenchOptions Parse(string[] args)
    {
        var read = new BenchOptionReader(args,
            ["--workers", "--load", "--seconds", "--speedup", "--seed", "--slots", "--policies", "--workloads", "--plot-loads", "--plot-dir", "--requests-csv", "--plot-from"]);
        var defaults = new RoutingBenchOptions();
        var options = new RoutingBenchOptions
        {
            Workers = read.Int("--workers", defaults.Workers, 1, 64),
            Load = read.Real("--load", defaults.Load, 0.01, 2),
            Seconds = read.Real("--seconds", defaults.Seconds, 1, 36_000),
            Speedup = read.Real("--speedup", defaults.Speedup, 0.1, 1000),
            Seed = read.Int("--seed", defaults.Seed, 0),
            Slots = read.Int("--slots", defaults.Slots, 1, 64),
            Policies = read.Value("--policies", defaults.Policies, PolicyList),
            Workloads = read.Value("--workloads", defaults.Workloads, value => [.. value.Split(',').Select(Workload)]),
            PlotLoads = read.Value("--plot-loads", defaults.PlotLoads, value => [.. value.Split(',').Select(v => BenchOptionReader.Real("--plot-loads", v, 0.01, 2))]),
            PlotDirectory = read.Text("--plot-dir", defaults.PlotDirectory)!,
            RequestsCsv = read.Text("--requests-csv", null),
            PlotFrom = read.Text("--plot-from", null),
        };
        read.ThrowIfErrors();
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
}
