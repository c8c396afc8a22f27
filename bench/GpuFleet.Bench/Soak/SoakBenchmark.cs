using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuFleet.Bench.Gateway;
using GpuFleet.Bench.Routing;
using GpuFleet.Gateway.Routing;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Bench.Soak;

/// <summary>
/// <c>soak</c>: a fleet left under steady streaming load for a long time. SIMULATED workers (the cost-model engine behind
/// the real scheduler, RTX 3090 profile at real speed), the real gateway with its state in a real redis-server, and
/// <see cref="SoakOptions.Streams"/> coding-agent conversations streaming at once without pause. Every request must end
/// well (200, a finish reason, <c>[DONE]</c>, no error event); the resident memory of every process is sampled, and the
/// drift is the change from the start of the measured time (after a warm-up) to its end.
/// </summary>
internal static class SoakBenchmark
{
    private const int Agents = 4;
    private const int TurnsPerSession = 8;

    public static Task<int> RunAsync(string[] args) =>
        BenchmarkRun.RunAsync("soak", SoakOptions.Usage, args, SoakOptions.Parse,
            (options, run) => RunAsync(options, run.BuildSimulationModel(), run.Cancel), "cancelled; the fleet is stopped");

    private static async Task<int> RunAsync(SoakOptions options, string model, CancellationToken cancel)
    {
        await using var redis = options.Redis == "auto" && RedisServerProcess.IsInstalled() ? await RedisServerProcess.StartAsync() : null;
        await using var fleet = await SimulatedFleet.StartAsync(model, options.Workers, options.Slots, speedup: 1);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue }) { Timeout = Timeout.InfiniteTimeSpan };
        var port = FreePort.Next();
        string[] extra = redis is null ? [] : ["--redis", redis.Endpoint];
        await using var gateway = await fleet.StartGatewayAsync(RoutingOptions.DefaultPolicy, port, http, extra);
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        var modelId = await ModelIdAsync(http, baseAddress, cancel);

        var processes = new List<(string Name, int Pid)> { ("gateway", gateway.ProcessId) };
        processes.AddRange(fleet.Workers.Select((w, i) => ($"worker-{i}", w.ProcessId)));
        if (redis?.ProcessId is { } redisPid)
        {
            processes.Add(("redis", redisPid));
        }

        // Start-up growth (JIT tiers, pools, the GC settling on its budgets) is not drift: the baseline comes after a warm-up.
        var warmUp = TimeSpan.FromMinutes(Math.Min(5, options.Minutes * 0.2));
        var measured = TimeSpan.FromMinutes(options.Minutes);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"soak: SIMULATED workers ({options.Workers} x {options.Slots} slots, RTX 3090 cost model at real speed), gateway{(redis is null ? "" : " + redis-server")}; " +
            $"{options.Streams} streams, max_tokens {options.MaxTokens}, {warmUp.TotalMinutes:0.#} min warm-up then {options.Minutes:0.#} min measured, {Environment.ProcessorCount} CPUs"));

        var stats = new SoakStats();
        var clock = Stopwatch.StartNew();
        var end = warmUp + measured;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var streams = Enumerable.Range(0, options.Streams).Select(i => StreamLoopAsync(http, baseAddress, modelId, options.MaxTokens, i, stats, clock, end, stop.Token)).ToList();

        var samples = new List<MemorySample>();
        var header = "elapsed_s " + string.Join(' ', processes.Select(p => $"{p.Name}_rss_mb"));
        Console.Error.WriteLine(header + " requests failed");
        while (clock.Elapsed < end)
        {
            var elapsed = clock.Elapsed;
            foreach (var (name, pid) in processes)
            {
                samples.Add(new MemorySample(elapsed, name, ResidentBytes(pid)));
            }

            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{elapsed.TotalSeconds,9:F0} {string.Join(' ', samples.TakeLast(processes.Count).Select(s => (s.Bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture)))} {stats.Completed} {stats.Failed}"));
            foreach (var (name, pid) in processes)
            {
                if (!IsAlive(pid))
                {
                    throw new InvalidOperationException($"{name} (pid {pid}) died during the soak.");
                }
            }

            var wait = TimeSpan.FromSeconds(options.SampleSeconds);
            await Task.Delay(wait < end - clock.Elapsed ? wait : end - clock.Elapsed + TimeSpan.FromMilliseconds(1), cancel);
        }

        foreach (var (name, pid) in processes)
        {
            samples.Add(new MemorySample(clock.Elapsed, name, ResidentBytes(pid)));
        }

        // Requests in flight at the end finish (they count); no new one starts.
        await stop.CancelAsync();
        await Task.WhenAll(streams);
        if (options.Csv is { } csv)
        {
            WriteCsv(csv, samples);
            Console.Error.WriteLine($"soak: memory samples in {csv}");
        }

        foreach (var failure in stats.FirstFailures)
        {
            Console.Error.WriteLine($"soak: failed request: {failure}");
        }

        var drift = processes.ToDictionary(p => p.Name, p => DriftPercent(samples.Where(s => s.Process == p.Name && s.Elapsed >= warmUp).ToList()), StringComparer.Ordinal);
        foreach (var (name, value) in drift)
        {
            var own = samples.Where(s => s.Process == name).ToList();
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"soak: {name}: rss start {own.First(s => s.Elapsed >= warmUp).Bytes / 1048576.0:F1} MB, end {own[^1].Bytes / 1048576.0:F1} MB, peak {own.Max(s => s.Bytes) / 1048576.0:F1} MB, drift {value:F1} %"));
        }

        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"soak: {stats.Completed} requests ({stats.Completed / clock.Elapsed.TotalSeconds:F1}/s), {stats.Tokens} tokens streamed, TTFT p50 {stats.TtftPercentile(50):F0} ms p99 {stats.TtftPercentile(99):F0} ms"));
        var summary = new SummaryLine("soak")
            .Add("minutes", options.Minutes, "0.##")
            .Add("requests", stats.Completed + stats.Failed, "F0")
            .Add("failed", stats.Failed, "F0")
            .Add("gateway_rss_drift_pct", drift["gateway"], "F1")
            .Add("worker_rss_drift_pct", drift.Where(d => d.Key.StartsWith("worker-", StringComparison.Ordinal)).Max(d => d.Value), "F1");
        Console.WriteLine(summary.ToString());
        return stats.Failed == 0 ? 0 : 1;
    }

    /// <summary>One client: agent conversations of <see cref="TurnsPerSession"/> turns, one request after another, until told to stop.</summary>
    private static async Task StreamLoopAsync(HttpClient http, Uri gateway, string model, int maxTokens, int index, SoakStats stats, Stopwatch clock, TimeSpan end,
        CancellationToken stop)
    {
        var systemPrompts = Enumerable.Range(0, Agents).Select(a => AgentWorkload.SystemPrompt(4_000, $"agent-{a}")).ToArray();
        for (var session = 0; !stop.IsCancellationRequested && clock.Elapsed < end; session++)
        {
            var request = new JsonObject
            {
                ["model"] = model,
                ["stream"] = true,
                ["stream_options"] = new JsonObject { ["include_usage"] = true },
                ["max_tokens"] = maxTokens,
                ["temperature"] = 0,
                ["messages"] = new JsonArray
                {
                    new JsonObject { ["role"] = "system", ["content"] = systemPrompts[(index + session) % Agents] },
                    new JsonObject { ["role"] = "user", ["content"] = AgentWorkload.ContextMessage($"Task {index}.{session}: fix the failing test.", 2_000) },
                },
            };
            for (var turn = 1; turn <= TurnsPerSession && !stop.IsCancellationRequested && clock.Elapsed < end; turn++)
            {
                var started = clock.Elapsed;
                var (error, ttft, tokens) = await SendAsync(http, gateway, request, clock);
                if (error is null)
                {
                    stats.Complete(ttft - started, tokens);
                }
                else
                {
                    stats.Fail($"stream {index} session {session} turn {turn}: {error}");
                }

                request = AgentWorkload.NextTurn(request, turn);
            }
        }
    }

    /// <summary>One streaming request, read to its end; the error (null when it ended well), the first-token time and the tokens streamed.</summary>
    private static async Task<(string? Error, TimeSpan FirstToken, int Tokens)> SendAsync(HttpClient http, Uri gateway, JsonObject body, Stopwatch clock)
    {
        try
        {
            using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway, "/v1/chat/completions"))
            {
                Content = new StringContent(body.ToJsonString(), Encoding.UTF8, new MediaTypeHeaderValue("application/json")),
            };
            using var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead);
            if (!response.IsSuccessStatusCode)
            {
                return ($"HTTP {(int)response.StatusCode}: {Short(await response.Content.ReadAsStringAsync())}", default, 0);
            }

            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            TimeSpan? firstToken = null;
            var (tokens, finished, done) = (0, false, false);
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    continue;
                }

                var data = line[6..];
                if (data == "[DONE]")
                {
                    done = true;
                    continue;
                }

                using var json = JsonDocument.Parse(data);
                if (json.RootElement.TryGetProperty("error", out var error))
                {
                    return ($"error event: {Short(error.ToString())}", default, tokens);
                }

                foreach (var choice in json.RootElement.GetProperty("choices").EnumerateArray())
                {
                    if (choice.TryGetProperty("delta", out var delta) && delta.TryGetProperty("content", out var content) && content.GetString() is { Length: > 0 })
                    {
                        firstToken ??= clock.Elapsed;
                        tokens++;
                    }

                    finished |= choice.TryGetProperty("finish_reason", out var reason) && reason.ValueKind == JsonValueKind.String;
                }
            }

            return !done ? ("the stream ended without [DONE]", default, tokens)
                : !finished ? ("the stream had no finish_reason", default, tokens)
                : (null, firstToken ?? clock.Elapsed, tokens);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or JsonException or TaskCanceledException)
        {
            return ($"{ex.GetType().Name}: {Short(ex.Message)}", default, 0);
        }
    }

    /// <summary>Percent change of the resident size from the start of the measured time to its end: medians of its first and last tenth.</summary>
    private static double DriftPercent(List<MemorySample> samples)
    {
        if (samples.Count == 0)
        {
            return double.NaN;
        }

        var tenth = Math.Max(1, samples.Count / 10);
        static double Median(IEnumerable<MemorySample> part)
        {
            var sorted = part.Select(s => (double)s.Bytes).Order().ToList();
            return sorted[sorted.Count / 2];
        }

        var start = Median(samples.Take(tenth));
        return (Median(samples.TakeLast(tenth)) - start) / start * 100;
    }

    /// <summary>VmRSS from /proc/PID/status, in bytes (0 when the process is gone).</summary>
    private static long ResidentBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
            // Gone.
        }

        return 0;
    }

    private static bool IsAlive(int pid) => File.Exists($"/proc/{pid}/status") && ResidentBytes(pid) > 0;

    private static void WriteCsv(string path, List<MemorySample> samples)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var writer = new StreamWriter(path);
        writer.WriteLine("elapsed_s,process,rss_bytes");
        foreach (var sample in samples)
        {
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{sample.Elapsed.TotalSeconds:F0},{sample.Process},{sample.Bytes}"));
        }
    }

    private static async Task<string> ModelIdAsync(HttpClient http, Uri baseAddress, CancellationToken cancel)
    {
        using var json = JsonDocument.Parse(await http.GetStringAsync(new Uri(baseAddress, "/v1/models"), cancel));
        return json.RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;
    }

    private static string Short(string text) => text.Length <= 200 ? text : text[..200] + "...";

    private sealed record MemorySample(TimeSpan Elapsed, string Process, long Bytes);
}

/// <summary>What the soak's streams report, from many threads.</summary>
internal sealed class SoakStats
{
    private const int KeptFailures = 20;
    private readonly Lock _gate = new();
    private readonly List<double> _ttftMs = [];
    private readonly List<string> _failures = [];

    public long Completed { get; private set; }

    public long Failed { get; private set; }

    public long Tokens { get; private set; }

    public IReadOnlyList<string> FirstFailures
    {
        get
        {
            lock (_gate)
            {
                return [.. _failures];
            }
        }
    }

    public void Complete(TimeSpan ttft, int tokens)
    {
        lock (_gate)
        {
            Completed++;
            Tokens += tokens;
            _ttftMs.Add(ttft.TotalMilliseconds);
        }
    }

    public void Fail(string reason)
    {
        lock (_gate)
        {
            Failed++;
            if (_failures.Count < KeptFailures)
            {
                _failures.Add(reason);
            }
        }
    }

    public double TtftPercentile(double percentile)
    {
        lock (_gate)
        {
            if (_ttftMs.Count == 0)
            {
                return double.NaN;
            }

            var sorted = _ttftMs.Order().ToList();
            return sorted[Math.Min(sorted.Count - 1, (int)(percentile / 100 * sorted.Count))];
        }
    }
}
