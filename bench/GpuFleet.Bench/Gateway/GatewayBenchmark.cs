using System.Globalization;
using System.Text.Json;
using GpuFleet.Testing;

namespace GpuFleet.Bench.Gateway;

/// <summary>
/// The gateway's own cost: one SIMULATED worker (zero-cost engine, so the model adds nothing) called three
/// ways under the same closed-loop load: directly, through the gateway, and through nginx as a plain reverse
/// proxy. Rounds alternate the three (rotating which goes first) so that machine noise spreads evenly; the
/// overhead of a proxy at a percentile is its latency minus the direct latency at that percentile.
/// </summary>
internal static class GatewayBenchmark
{
    private const string SimulatedHeader = "x-gpufleet-simulated";

    // Request logging off in the .NET processes, as nginx runs with access_log off: the benchmark measures
    // proxying, not console output. Warnings (such as the simulated engine's) still show.
    private static readonly Dictionary<string, string> QuietLogs = new(StringComparer.Ordinal) { ["Logging__LogLevel__Default"] = "Warning" };

    public static Task<int> RunAsync(string[] args) =>
        BenchmarkRun.RunAsync("gateway", GatewayBenchOptions.Usage, args, GatewayBenchOptions.Parse, async (options, run) =>
        {
            if (NginxProxy.Find() is not { } nginx)
            {
                Console.Error.WriteLine($"nginx is not installed; install it with:\n  {NginxProxy.InstallCommand}\n(or run bench/setup.sh, which installs what the benchmarks need)");
                return 2;
            }

            // A signal stops the measurement and the run stops the worker, the gateway and nginx instead of leaving them running.
            return await RunAsync(options, nginx, run.Temp, run.Own(new ChildProcesses()), run.Cancel);
        }, "cancelled; stopping the worker, the gateway and nginx");

    private static async Task<int> RunAsync(GatewayBenchOptions options, string nginx, string temp, ChildProcesses processes, CancellationToken cancel)
    {
        var workerDll = BesideBench("GpuFleet.Worker.dll");
        var gatewayDll = BesideBench("GpuFleet.Gateway.dll");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var startup = TimeSpan.FromSeconds(90);

        var model = options.Model;
        if (model is null)
        {
            model = Path.Combine(temp, "tiny-qwen3.gguf");
            await processes.RunToEndAsync("demo-model", "dotnet", [workerDll, "demo-model", model, "--arch", "qwen3", "--size", "tiny"], cancel);
        }

        var workerPort = FreePort.Next();
        var worker = processes.Start("worker", "dotnet",
        [
            workerDll, "--model", Path.GetFullPath(model), "--simulate", "--host", "127.0.0.1", "--name", "bench-simulated",
            "--http-port", Number(workerPort), "--grpc-port", Number(FreePort.Next()), "--enable-thinking", "false",
            // Room for every caller: a refusal (429) would measure the wrong thing.
            "--slots", Number(Math.Max(4, options.Concurrency)), "--queue", Number(options.Concurrency * 4),
        ], QuietLogs);
        var direct = new Uri($"http://127.0.0.1:{workerPort}");
        await worker.WaitForHttpAsync(http, new Uri(direct, "/readyz"), startup, cancel);
        var modelId = await ModelIdAsync(http, direct, cancel);

        var gatewayPort = FreePort.Next();
        var gateway = processes.Start("gateway", "dotnet",
            [gatewayDll, "--http-port", Number(gatewayPort), "--grpc-port", "0", "--worker", direct.ToString().TrimEnd('/')], QuietLogs);
        var throughGateway = new Uri($"http://127.0.0.1:{gatewayPort}");
        await gateway.WaitForHttpAsync(http, new Uri(throughGateway, "/healthz"), startup, cancel);

        var nginxPort = FreePort.Next();
        var proxy = NginxProxy.Start(processes, nginx, Path.Combine(temp, "nginx"), nginxPort, direct, options.NginxWorkers);
        var throughNginx = new Uri($"http://127.0.0.1:{nginxPort}");
        await proxy.WaitForHttpAsync(http, new Uri(throughNginx, "/readyz"), startup, cancel);

        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["model"] = modelId,
            ["max_tokens"] = options.MaxTokens,
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = "Say hello to the gateway benchmark." } },
        });
        var targets = new[]
        {
            new ClosedLoopLoad("direct", direct, "/v1/chat/completions", body, options.Concurrency),
            new ClosedLoopLoad("gateway", throughGateway, "/v1/chat/completions", body, options.Concurrency),
            new ClosedLoopLoad("nginx", throughNginx, "/v1/chat/completions", body, options.Concurrency),
        };
        try
        {
            // The gateway serves once its load view has seen the worker ready; then every path must reach the simulated worker.
            foreach (var target in targets)
            {
                await EnsureSimulatedAsync(target, target == targets[1] ? gateway : target == targets[2] ? proxy : worker, startup, cancel);
            }

            Console.Error.WriteLine("gateway: SIMULATED worker (zero-cost engine): these figures are proxy overhead only");
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"gateway: model {modelId}, concurrency {options.Concurrency}, {options.Requests} requests per target in {options.Rounds} rounds after {options.WarmupSeconds} s of warm-up each, max_tokens {options.MaxTokens}, nginx {options.NginxWorkers} worker process(es), {Environment.ProcessorCount} CPUs"));
            foreach (var target in targets)
            {
                var (first, last) = await target.WarmUpAsync(TimeSpan.FromSeconds(options.WarmupSeconds), options.Concurrency, cancel);
                Console.Error.WriteLine($"warm-up {target.Name}: {first} req/s in its first second, {last} req/s in its last");
            }

            var perRound = (options.Requests + options.Rounds - 1) / options.Rounds;
            // CPU used by the proxy (gateway, nginx) and by the worker while each path is measured.
            var proxies = new Dictionary<string, ChildProcess?>(StringComparer.Ordinal) { ["direct"] = null, ["gateway"] = gateway, ["nginx"] = proxy };
            var cpu = targets.ToDictionary(t => t.Name, _ => (Proxy: TimeSpan.Zero, Worker: TimeSpan.Zero), StringComparer.Ordinal);
            for (var round = 0; round < options.Rounds; round++)
            {
                // Rotate who goes first, so that no target always runs right after another's burst.
                var roundResults = new Dictionary<string, List<double>>(StringComparer.Ordinal);
                for (var i = 0; i < targets.Length; i++)
                {
                    var target = targets[(i + round) % targets.Length];
                    var (proxyBefore, workerBefore) = (proxies[target.Name]?.CpuTime() ?? TimeSpan.Zero, worker.CpuTime());
                    roundResults[target.Name] = await target.RunAsync(perRound, options.Concurrency, record: true, cancel);
                    var used = cpu[target.Name];
                    cpu[target.Name] = (used.Proxy + (proxies[target.Name]?.CpuTime() ?? TimeSpan.Zero) - proxyBefore, used.Worker + worker.CpuTime() - workerBefore);
                }

                Console.Error.WriteLine($"round {round + 1}/{options.Rounds} (p50/p99 ms): " + string.Join(", ", targets.Select(t =>
                    string.Create(CultureInfo.InvariantCulture, $"{t.Name} {Percentile(roundResults[t.Name], 50):F3}/{Percentile(roundResults[t.Name], 99):F3}"))));
            }

            // After the rounds every series the gateway and the worker export exists: what a Prometheus scrape then costs.
            var gatewayScrape = await ScrapeCostAsync(http, new Uri(throughGateway, "/metrics"), gateway, cancel);
            var workerScrape = await ScrapeCostAsync(http, new Uri(direct, "/metrics"), worker, cancel);
            var decisionP99 = await DecisionBenchmark.MeasureP99MicrosecondsAsync(processes, options.Decisions, cancel);
            return Report(targets, cpu, decisionP99, gatewayScrape, workerScrape);
        }
        finally
        {
            foreach (var target in targets)
            {
                target.Dispose();
            }
        }
    }

    private static int Report(ClosedLoopLoad[] targets, Dictionary<string, (TimeSpan Proxy, TimeSpan Worker)> cpu, double decisionP99Microseconds,
        ScrapeCost gatewayScrape, ScrapeCost workerScrape)
    {
        foreach (var (name, scrape) in new[] { ("gateway", gatewayScrape), ("worker", workerScrape) })
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"scrape {name} /metrics: {scrape.Bytes} bytes, {scrape.Series} samples, p50 {scrape.P50Ms:F3} ms, p99 {scrape.P99Ms:F3} ms, {scrape.CpuMicroseconds:F0} us CPU per scrape"));
        }

        double PerRequestMicroseconds(ClosedLoopLoad target, TimeSpan used) => used.TotalMicroseconds / Math.Max(1, target.LatenciesMs.Count + target.Errors);
        Console.Error.WriteLine("cpu per request (us, user + system, from /proc): " + string.Join(", ", targets.Select(t => string.Create(CultureInfo.InvariantCulture,
            $"{t.Name}: proxy {PerRequestMicroseconds(t, cpu[t.Name].Proxy):F0} worker {PerRequestMicroseconds(t, cpu[t.Name].Worker):F0}"))));
        Console.Error.WriteLine("target     requests  errors     req/s   mean ms    p50 ms    p90 ms    p99 ms");
        foreach (var t in targets)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{t.Name,-9} {t.LatenciesMs.Count,9} {t.Errors,7} {t.LatenciesMs.Count / t.MeasuredTime.TotalSeconds,9:F0} {t.LatenciesMs.Average(),9:F3} {Percentile(t.LatenciesMs, 50),9:F3} {Percentile(t.LatenciesMs, 90),9:F3} {Percentile(t.LatenciesMs, 99),9:F3}"));
        }

        var (direct, gateway, nginx) = (targets[0].LatenciesMs, targets[1].LatenciesMs, targets[2].LatenciesMs);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"detail: nginx_overhead_p99_ms={Percentile(nginx, 99) - Percentile(direct, 99):F3} gateway_minus_nginx_p50_ms={Percentile(gateway, 50) - Percentile(nginx, 50):F3}"));
        var summary = new SummaryLine("gateway")
            .Add("overhead_p50_ms", Percentile(gateway, 50) - Percentile(direct, 50), "F3")
            .Add("overhead_p99_ms", Percentile(gateway, 99) - Percentile(direct, 99), "F3")
            .Add("nginx_overhead_p50_ms", Percentile(nginx, 50) - Percentile(direct, 50), "F3")
            .Add("ratio_p50", Percentile(gateway, 50) / Percentile(nginx, 50), "F2")
            .Add("decision_p99_us", decisionP99Microseconds, "F0")
            .Add("scrape_p50_ms", gatewayScrape.P50Ms, "F3")
            .Add("worker_scrape_p50_ms", workerScrape.P50Ms, "F3");
        Console.WriteLine(summary);

        var errors = targets.Sum(t => t.Errors);
        if (errors > 0)
        {
            Console.Error.WriteLine($"gateway: {errors} request(s) did not answer 200; the figures leave them out");
            return 1;
        }

        return 0;
    }

    /// <summary>Latency (sequential, after a warm-up) and server CPU of a scrape of <paramref name="metrics"/>.</summary>
    private static async Task<ScrapeCost> ScrapeCostAsync(HttpClient http, Uri metrics, ChildProcess server, CancellationToken cancel)
    {
        const int Warmup = 100, Scrapes = 1000;
        var text = "";
        for (var i = 0; i < Warmup; i++)
        {
            text = await http.GetStringAsync(metrics, cancel);
        }

        var latencies = new List<double>(Scrapes);
        var cpuBefore = server.CpuTime();
        for (var i = 0; i < Scrapes; i++)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            using var response = await http.GetAsync(metrics, cancel);
            await response.Content.LoadIntoBufferAsync(cancel);
            latencies.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }

        var cpu = (server.CpuTime() - cpuBefore).TotalMicroseconds / Scrapes;
        var series = text.Split('\n').Count(line => line.Length > 0 && line[0] != '#');
        return new ScrapeCost(System.Text.Encoding.UTF8.GetByteCount(text), series, Percentile(latencies, 50), Percentile(latencies, 99), cpu);
    }

    private sealed record ScrapeCost(int Bytes, int Series, double P50Ms, double P99Ms, double CpuMicroseconds);

    /// <summary>Retries until the path answers 200 (the gateway needs the worker's status first) and checks it reaches a simulated worker.</summary>
    private static async Task EnsureSimulatedAsync(ClosedLoopLoad target, ChildProcess server, TimeSpan timeout, CancellationToken cancel)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (server.Process.HasExited)
            {
                throw new InvalidOperationException($"{server.Name} exited with {server.Process.ExitCode}:\n{server.Output}");
            }

            using var response = await target.ProbeAsync(cancel);
            if (response.IsSuccessStatusCode)
            {
                if (!response.Headers.TryGetValues(SimulatedHeader, out var values) || !values.Contains("true"))
                {
                    throw new InvalidOperationException($"{target.Name}: the answer lacks '{SimulatedHeader}: true'; the benchmark only measures a simulated worker.");
                }

                return;
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"{target.Name} still answers {(int)response.StatusCode} after {timeout.TotalSeconds:F0} s: " +
                    $"{await response.Content.ReadAsStringAsync(cancel)}\n{server.Output}");
            }

            await Task.Delay(200, cancel);
        }
    }

    private static async Task<string> ModelIdAsync(HttpClient http, Uri worker, CancellationToken cancel)
    {
        using var models = JsonDocument.Parse(await http.GetStringAsync(new Uri(worker, "/v1/models"), cancel));
        return models.RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;
    }

    /// <summary>Nearest-rank percentile.</summary>
    private static double Percentile(List<double> values, double percentile)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToList();
        var rank = (int)Math.Ceiling(percentile / 100 * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    private static string BesideBench(string file)
    {
        var path = Path.Combine(AppContext.BaseDirectory, file);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{file} is not beside the benchmark; build bench/GpuFleet.Bench (it references the worker and the gateway).", path);
    }

    private static string Number(int port) => port.ToString(CultureInfo.InvariantCulture);
}
