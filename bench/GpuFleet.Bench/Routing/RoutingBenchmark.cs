using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Peers;
using GpuFleet.Testing;
using GpuFleet.Worker.Engine.CostModel;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Bench.Routing;

/// <summary>
/// <c>routing</c>: the routing policies side by side on one simulated fleet through the real gateway. Workers run the
/// cost-model engine (RTX 3090 + Qwen3.6-27B profile) behind the real scheduler; each policy gets a fresh gateway and the
/// same seeded sessions (with a salt, so no run reuses another's prefixes). Times are modelled: measured real time times
/// the speed-up that every worker runs at, so every policy sees the same clock.
/// </summary>
internal static class RoutingBenchmark
{
    /// <summary>Sessions send no new request after this many times the arrival window.</summary>
    public const double HorizonFactor = 1.5;

    private const string PlotFile = "routing-ttft-vs-load.png";

    public static Task<int> RunAsync(string[] args) =>
        BenchmarkRun.RunAsync("routing", RoutingBenchOptions.Usage, args, RoutingBenchOptions.Parse, async (options, run) =>
        {
            if (options.PlotFrom is { } csv)
            {
                var plot = Path.Combine(options.PlotDirectory, PlotFile);
                TtftPlot.Write(plot, RequestCsv.ReadTtft(csv, Name(WorkloadKind.Mix)));
                Console.Error.WriteLine($"routing: wrote {plot} from {csv}");
                return 0;
            }

            var summaries = await RunAsync(options, run.BuildSimulationModel(), Console.Out, Console.Error, run.Cancel);
            if (options.PlotLoads.Count > 0)
            {
                var path = Path.Combine(options.PlotDirectory, PlotFile);
                TtftPlot.Write(path, summaries.Where(s => s.Workload == Name(WorkloadKind.Mix)).ToList());
                Console.Error.WriteLine($"routing: wrote {path}");
            }

            Console.WriteLine(SummaryLine(summaries, options.Load));
            return 0;
        }, "cancelled; the fleet is stopped");

    /// <summary>Starts the fleet, runs every workload, load and policy, prints a table per workload; returns every run's summary.</summary>
    public static async Task<IReadOnlyList<RunSummary>> RunAsync(RoutingBenchOptions options, string modelPath, TextWriter output, TextWriter progress, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(progress);
        var profile = CostModelProfiles.Find(CostModelProfiles.Rtx3090Qwen36)!;
        using var tokenizer = LlamaModel.Load(modelPath, vocabularyOnly: true);
        var modelId = Path.GetFileNameWithoutExtension(modelPath);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 4096, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2) })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        var clock = Stopwatch.StartNew();
        await using var fleet = await SimulatedFleet.StartAsync(modelPath, options.Workers, options.Slots, options.Speedup);
        progress.WriteLine($"routing: {options.Workers} simulated workers ({profile.Name}, {options.Slots} slots, {options.Speedup}x) started in {clock.Elapsed.TotalSeconds:F0} s");

        var summaries = new List<RunSummary>();
        using var csv = options.RequestsCsv is null ? null : new RequestCsv(options.RequestsCsv);
        var run = 0;
        foreach (var workload in options.Workloads)
        {
            var loads = workload == WorkloadKind.Mix ? options.PlotLoads.Append(options.Load).Distinct().Order().ToList() : [options.Load];
            foreach (var load in loads)
            {
                foreach (var policy in options.Policies)
                {
                    cancel.ThrowIfCancellationRequested();
                    var (summary, outcomes) = await RunOnceAsync(options, fleet, http, new PromptOracle(tokenizer), profile, modelId, workload, load, policy, $"r{run++:D3}", cancel);
                    progress.WriteLine($"routing: {Row(summary)}");
                    csv?.Write(policy, summary.Workload, load, outcomes);
                    foreach (var line in RouteBreakdown.Lines(policy, outcomes))
                    {
                        progress.WriteLine(line);
                    }

                    summaries.Add(summary);
                }
            }
        }

        foreach (var group in summaries.GroupBy(s => (s.Workload, s.Load)))
        {
            output.WriteLine();
            output.WriteLine($"routing: workload {group.Key.Workload} at {group.Key.Load:P0} of fleet capacity, {options.Workers} workers, {options.Seconds:F0} s of arrivals (modelled), seed {options.Seed}, SIMULATED ({profile.Name}, {options.Speedup}x)");
            output.WriteLine($"{"policy",-20} {"reqs",6} {"fail",5} {"ttft p50",9} {"p90",8} {"p99",8} {"itl p99",9} {"tok/s",8} {"hit",6} {"vs oracle",9} {"imbalance",9}");
            foreach (var s in group)
            {
                output.WriteLine(Row(s));
            }
        }

        output.WriteLine();
        return summaries;
    }

    /// <summary>The closing line: others' TTFT over ours (p90, agent-heavy mix), our hits over the oracle's, least-queue's skewed p99 over ours.</summary>
    public static string SummaryLine(IReadOnlyList<RunSummary> summaries, double load)
    {
        ArgumentNullException.ThrowIfNull(summaries);
        RunSummary? Find(string policy, WorkloadKind workload) =>
            summaries.FirstOrDefault(s => s.Policy == policy && s.Workload == Name(workload) && Math.Abs(s.Load - load) < 1e-9);
        var ours = Find(RoutingOptions.DefaultPolicy, WorkloadKind.Mix);
        var roundRobin = Find(RoundRobinPolicy.PolicyName, WorkloadKind.Mix);
        var peers = summaries.Where(s => s.Policy != RoutingOptions.DefaultPolicy && s.Workload == Name(WorkloadKind.Mix) && Math.Abs(s.Load - load) < 1e-9).ToList();
        var skewedOurs = Find(RoutingOptions.DefaultPolicy, WorkloadKind.Skewed);
        var skewedLeastQueue = Find(LeastQueuePolicy.PolicyName, WorkloadKind.Skewed);
        return string.Create(CultureInfo.InvariantCulture,
            $"routing: ttft_p90_vs_round_robin={Ratio(roundRobin?.TtftP90, ours?.TtftP90)} ttft_p90_vs_best_peer={Ratio(peers.Count == 0 ? null : peers.Min(p => p.TtftP90), ours?.TtftP90)} hit_ratio_vs_oracle={(ours is null ? "n/a" : ours.HitVsOracle.ToString("F2", CultureInfo.InvariantCulture))} skewed_p99_vs_least_queue={Ratio(skewedLeastQueue?.TtftP99, skewedOurs?.TtftP99)}");
    }

    private static string Name(WorkloadKind kind) => kind.ToString().ToLowerInvariant();

    private static string Ratio(double? other, double? ours) =>
        other is null || ours is null || ours <= 0 || double.IsNaN(other.Value) || double.IsNaN(ours.Value) ? "n/a" : (other.Value / ours.Value).ToString("F2", CultureInfo.InvariantCulture);

    private static string Row(RunSummary s) => string.Create(CultureInfo.InvariantCulture,
        $"{s.Policy,-20} {s.Requests,6} {s.Failed,5} {s.TtftP50,8:F2}s {s.TtftP90,7:F2}s {s.TtftP99,7:F2}s {s.InterTokenP99 * 1000,7:F0}ms {s.TokensPerSecond,8:F0} {s.HitRatio,6:P0} {s.HitVsOracle,9:F2} {s.Imbalance,9:F2}");

    private static async Task<(RunSummary Summary, IReadOnlyList<RequestOutcome> Outcomes)> RunOnceAsync(RoutingBenchOptions options, SimulatedFleet fleet, HttpClient http, PromptOracle oracle, CostModelProfile profile,
        string modelId, WorkloadKind workload, double load, string policy, string salt, CancellationToken cancel)
    {
        // Capacity from the sessions themselves: a first pass at rate 1 gives the mean GPU cost per session (the same
        // seed draws the same sessions at any rate; only their arrival times scale).
        var probe = RoutingWorkload.Generate(workload, options.Seed, 1, Math.Max(200, options.Seconds), modelId, salt);
        var meanCost = probe.Average(s => oracle.IdealSeconds(s, profile, options.Slots));
        var rate = load * options.Workers / meanCost;
        var sessions = RoutingWorkload.Generate(workload, options.Seed, rate, options.Seconds, modelId, salt);

        var port = FreePort.Next();
        await using var gateway = await fleet.StartGatewayAsync(policy, port, http);
        var endpoint = new Uri($"http://127.0.0.1:{port}/v1/chat/completions");
        var outcomes = new ConcurrentBag<RequestOutcome>();
        var speedup = options.Speedup;
        var clock = Stopwatch.StartNew();
        // Sessions stop sending at the horizon (requests in flight finish): an overloaded policy's sessions would otherwise
        // run on for many times the window, and every policy is measured over the same span of arrivals.
        var horizon = TimeSpan.FromSeconds(options.Seconds * HorizonFactor / speedup);
        await Task.WhenAll(sessions.Select(async session =>
        {
            await Task.Delay(TimeSpan.FromSeconds(session.ArrivalSeconds / speedup), cancel);
            for (var index = 0; index < session.Turns.Count; index++)
            {
                var turn = session.Turns[index];
                if (turn.ThinkSeconds > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds(turn.ThinkSeconds / speedup), cancel);
                }

                if (clock.Elapsed > horizon)
                {
                    return;
                }

                var share = oracle.ReusableShare(turn.Body);
                var sentAt = clock.Elapsed.TotalSeconds * speedup;
                var outcome = await RoutingRequest.SendAsync(http, endpoint, turn.Body, session.Kind, share, speedup, cancel);
                outcomes.Add(outcome with { Origin = (session.Id, index, sentAt) });
            }
        }));
        var modelled = clock.Elapsed.TotalSeconds * speedup;
        if (outcomes.FirstOrDefault(o => !o.Ok) is { } failed)
        {
            Console.Error.WriteLine($"routing: {policy}: {outcomes.Count(o => !o.Ok)} request(s) failed, e.g. {failed.Error}");
        }

        IReadOnlyList<RequestOutcome> all = [.. outcomes];
        return (RunSummary.Of(policy, Name(workload), load, all, modelled, options.Workers), all);
    }
}
