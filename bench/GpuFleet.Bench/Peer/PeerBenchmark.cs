using System.Globalization;
using System.Text.Json;
using GpuFleet.Bench.Gateway;
using GpuFleet.Testing;

namespace GpuFleet.Bench.Peer;

/// <summary>
/// The worker against llama.cpp's own llama-server (built from the pinned release's source by
/// bench/peer/build-llama-server.sh): the same model, threads, slots and context, the same streaming client, one
/// server at a time, freshly started in every round, the order alternating between rounds. Each round also runs
/// llama-batched-bench, llama.cpp's own ceiling for batched decoding on this machine. Ends with the <c>peer:</c> line;
/// ratios are worker / llama-server (ttft: llama-server's time / ours), medians of the rounds' paired ratios.
/// </summary>
internal static class PeerBenchmark
{
    private const string Worker = "worker";
    private const string Server = "llama-server";
    private const int WarmUpRuns = 3;

    public static Task<int> RunAsync(string[] args) =>
        BenchmarkRun.RunAsync("peer", PeerOptions.Usage, args, PeerOptions.Parse,
            (options, run) => RunAsync(options, run.Own(new ChildProcesses()), run.Cancel), "cancelled; the servers are stopped");

    private static async Task<int> RunAsync(PeerOptions options, ChildProcesses processes, CancellationToken cancellationToken)
    {
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"peer: {Path.GetFileName(options.Model)}, {options.Threads} threads, {options.Slots} slots x {options.ContextPerSlot} tokens, " +
            $"{options.Tokens} greedy tokens per stream, streams {string.Join(',', options.Streams)}, {options.Rounds} rounds; llama-server from {options.ServerBin}"));
        var rounds = new List<RoundResult>();
        for (var round = 0; round < options.Rounds; round++)
        {
            var result = new RoundResult();
            string[] order = round % 2 == 0 ? [Worker, Server] : [Server, Worker];
            foreach (var name in order)
            {
                await using var server = name == Worker ? await StartWorkerAsync(options) : await StartServerAsync(options, processes, cancellationToken);
                try
                {
                    result.Measure(name, await MeasureAsync(server.Http, options, round, cancellationToken));
                }
                catch (HttpRequestException ex)
                {
                    var lastLines = string.Join('\n', server.Output().Split('\n').TakeLast(20));
                    throw new InvalidOperationException($"{name}, round {round + 1}: {ex.Message} {ex.InnerException?.Message}\n{name}'s last output lines:\n{lastLines}", ex);
                }
            }

            result.BatchedBench = await BatchedBench.RunAsync(options, processes, cancellationToken);
            rounds.Add(result);
            Console.Error.WriteLine($"round {round + 1}/{options.Rounds} ({order[0]} first): {result}");
        }

        Summarize(options, rounds);
        return 0;
    }

    /// <summary>Each stream count after a warm-up at that width, then the cold long prompt; every prompt names the round, so none is cached.</summary>
    private static async Task<Measurement> MeasureAsync(HttpClient http, PeerOptions options, int round, CancellationToken cancellationToken)
    {
        using var models = JsonDocument.Parse(await http.GetStringAsync(new Uri("/v1/models", UriKind.Relative), cancellationToken));
        var client = new CompletionStreams(http, models.RootElement.GetProperty("data")[0].GetProperty("id").GetString()!);
        var rates = new Dictionary<int, StreamsResult>();
        foreach (var streams in options.Streams)
        {
            // Warm-up at this width first: a fresh worker's request path runs as tier-0 JIT code until the runtime has
            // recompiled it (30 calls, then a background compile), and on 2 cores that compilation competes with ggml's
            // threads; one warm-up request left the worker's single stream 20 % slower than it runs once warm.
            for (var warmUp = 0; warmUp < WarmUpRuns; warmUp++)
            {
                var warmUpPrompts = Enumerable.Range(0, streams).Select(i => CompletionStreams.Prompt($"warm-up {round}-{streams}-{warmUp}-{i}", options.PromptTokens)).ToList();
                await client.RunAsync(warmUpPrompts, options.Tokens, cancellationToken);
            }

            var prompts = Enumerable.Range(0, streams).Select(i => CompletionStreams.Prompt($"{round}-{streams}-{i}", options.PromptTokens)).ToList();
            rates[streams] = await client.RunAsync(prompts, options.Tokens, cancellationToken);
        }

        var cold = await client.FirstTokenAsync(CompletionStreams.Prompt($"cold {round}", options.ColdPromptTokens), cancellationToken);
        return new Measurement(rates, cold.FirstToken, cold.PromptTokens);
    }

    private static async Task<RunningServer> StartWorkerAsync(PeerOptions options)
    {
        var worker = await WorkerProcess.StartAsync(options.Model,
        [
            "--name", "peer-bench", "--threads", Text(options.Threads), "--slots", Text(options.Slots),
            "--ctx-size", Text(options.Slots * options.ContextPerSlot),
        ]);
        return new RunningServer(Client(worker.BaseAddress), () => worker.Output, worker.DisposeAsync);
    }

    /// <summary>llama-server as its users run it: its defaults, with the model, threads, slots and (unified) context set as the worker's.</summary>
    private static async Task<RunningServer> StartServerAsync(PeerOptions options, ChildProcesses processes, CancellationToken cancellationToken)
    {
        var port = FreePort.Next();
        var child = processes.Start(Server, Path.Combine(options.ServerBin, "llama-server"),
        [
            "--model", options.Model, "--host", "127.0.0.1", "--port", Text(port), "--threads", Text(options.Threads),
            "--threads-batch", Text(options.Threads), "--parallel", Text(options.Slots), "--ctx-size", Text(options.Slots * options.ContextPerSlot),
            "--kv-unified", "--no-webui",
        ]);
        var http = Client(new Uri($"http://127.0.0.1:{port}"));
        await child.WaitForHttpAsync(http, new Uri("/health", UriKind.Relative), TimeSpan.FromMinutes(2), cancellationToken);
        return new RunningServer(http, () => child.Output, () =>
        {
            child.Kill();
            return new ValueTask(child.Process.WaitForExitAsync(CancellationToken.None));
        });
    }

    private static void Summarize(PeerOptions options, List<RoundResult> rounds)
    {
        double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToList();
            return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
        }

        string Spread(IEnumerable<double> values)
        {
            var list = values.ToList();
            return string.Create(CultureInfo.InvariantCulture, $"{Median(list):F2} (range {list.Min():F2}-{list.Max():F2}, spread {(list.Max() - list.Min()) / Median(list) * 100:F0} %)");
        }

        foreach (var streams in options.Streams)
        {
            StreamsResult worker = rounds[0][Worker].Rates[streams], server = rounds[0][Server].Rates[streams];
            Console.Error.WriteLine($"{streams} streams: prompt tokens counted by the worker {worker.MinPromptTokens}-{worker.MaxPromptTokens}, by llama-server {server.MinPromptTokens}-{server.MaxPromptTokens}");
            Console.Error.WriteLine($"{streams} streams: worker tok/s {Spread(rounds.Select(r => r[Worker].Rates[streams].TokensPerSecond))}");
            Console.Error.WriteLine($"{streams} streams: llama-server tok/s {Spread(rounds.Select(r => r[Server].Rates[streams].TokensPerSecond))}");
            Console.Error.WriteLine($"{streams} streams: ratio {Spread(rounds.Select(r => r.Ratio(streams)))}");
            if (rounds[0].BatchedBench.TryGetValue(streams, out _))
            {
                Console.Error.WriteLine($"{streams} streams: llama-batched-bench S_TG {Spread(rounds.Select(r => r.BatchedBench[streams]))}");
            }
        }

        Console.Error.WriteLine($"cold prompt ({rounds[0][Worker].ColdPromptTokens} tokens on the worker, {rounds[0][Server].ColdPromptTokens} on llama-server): " +
            $"worker ttft ms {Spread(rounds.Select(r => r[Worker].ColdFirstToken.TotalMilliseconds))}, llama-server ttft ms {Spread(rounds.Select(r => r[Server].ColdFirstToken.TotalMilliseconds))}, " +
            $"ratio {Spread(rounds.Select(r => r.ColdRatio))}");

        var line = new List<string>();
        foreach (var streams in options.Streams)
        {
            line.Add(string.Create(CultureInfo.InvariantCulture, $"worker_tok_s_{streams}={Median(rounds.Select(r => r[Worker].Rates[streams].TokensPerSecond)):F1}"));
            line.Add(string.Create(CultureInfo.InvariantCulture, $"server_tok_s_{streams}={Median(rounds.Select(r => r[Server].Rates[streams].TokensPerSecond)):F1}"));
        }

        line.AddRange(options.Streams.Select(streams => string.Create(CultureInfo.InvariantCulture, $"ratio_{streams}={Median(rounds.Select(r => r.Ratio(streams))):F2}")));
        line.Add(string.Create(CultureInfo.InvariantCulture, $"ttft_{options.ColdPromptTokens}_ratio={Median(rounds.Select(r => r.ColdRatio)):F2}"));
        Console.WriteLine($"peer: {string.Join(' ', line)}");
    }

    /// <summary>
    /// The client for either server. Idle connections are dropped after 2 s: llama-server (cpp-httplib) closes a kept-alive
    /// connection after 5 s idle, and a request sent on one just as it closes fails ("an error occurred while sending").
    /// </summary>
    private static HttpClient Client(Uri address) =>
        new(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(2) }) { BaseAddress = address, Timeout = TimeSpan.FromMinutes(10) };

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A started server, the tail of its output and how to stop it.</summary>
    private sealed class RunningServer(HttpClient http, Func<string> output, Func<ValueTask> stop) : IAsyncDisposable
    {
        public HttpClient Http { get; } = http;

        public Func<string> Output { get; } = output;

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await stop();
        }
    }

    private sealed record Measurement(IReadOnlyDictionary<int, StreamsResult> Rates, TimeSpan ColdFirstToken, int ColdPromptTokens);

    /// <summary>One round: both servers measured, one after the other, and llama-batched-bench's rates by batch size.</summary>
    private sealed class RoundResult
    {
        private readonly Dictionary<string, Measurement> _measurements = new(StringComparer.Ordinal);

        public IReadOnlyDictionary<int, double> BatchedBench { get; set; } = new Dictionary<int, double>();

        public Measurement this[string name] => _measurements[name];

        public double ColdRatio => this[Server].ColdFirstToken / this[Worker].ColdFirstToken;

        public void Measure(string name, Measurement measurement) => _measurements[name] = measurement;

        public double Ratio(int streams) => this[Worker].Rates[streams].TokensPerSecond / this[Server].Rates[streams].TokensPerSecond;

        public override string ToString()
        {
            var parts = this[Worker].Rates.Keys.Select(streams =>
            {
                var limit = BatchedBench.TryGetValue(streams, out var rate) ? string.Create(CultureInfo.InvariantCulture, $" / batched-bench {rate:F1}") : "";
                return string.Create(CultureInfo.InvariantCulture,
                    $"{streams} streams worker {this[Worker].Rates[streams].TokensPerSecond:F1} / server {this[Server].Rates[streams].TokensPerSecond:F1}{limit} tok/s");
            });
            return string.Join(", ", parts) + string.Create(CultureInfo.InvariantCulture,
                $"; cold ttft worker {this[Worker].ColdFirstToken.TotalMilliseconds:F0} / server {this[Server].ColdFirstToken.TotalMilliseconds:F0} ms");
        }
    }
}
