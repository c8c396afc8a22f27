using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Bench;

/// <summary>
/// The engine benchmark of issue 2: decode throughput at 1, 4 and 8 streams, time to first token of a
/// 2,000-token prompt cold and with a cached 1,900-token prefix, and the same decode workload through
/// node-llama-cpp (same GGUF, same llama.cpp v0.5.0 libraries) as the peer, and the 8-stream rate against a
/// bare decode loop on the same kind of context (engine_efficiency). Medians of several runs.
/// </summary>
internal static class EngineBenchmark
{
    private const string Text =
        "The quick brown fox jumps over the lazy dog while the patient engineer measures how many tokens per second " +
        "a small language model can produce when several independent streams share one inference context. ";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var backend = LlamaBackend.Initialize();
        using var model = LlamaModel.Load(options.Model, options.GpuLayers);
        Console.Error.WriteLine($"model: {model.Name} ({model.Description}, {model.ParameterCount:N0} parameters), threads {options.Threads}, " +
            $"devices {string.Join(", ", backend.Devices.Select(d => d.Name))}");

        var decode = new Dictionary<int, double>();
        foreach (var streams in new[] { 1, 4 })
        {
            decode[streams] = await MeasureDecodeAsync(model, options, streams);
            Console.Error.WriteLine($"decode: {streams} stream(s): {decode[streams]:F1} tokens/s (median of {options.Runs})");
        }

        var (batch8, bare8, ratios, decodeShare) = await MeasureEngineAgainstBareLoopAsync(model, options);
        decode[8] = batch8;
        Console.Error.WriteLine($"decode: 8 stream(s): {batch8:F1} tokens/s, bare loop {bare8:F1} tokens/s (medians of {options.Runs} interleaved pairs; " +
            $"per-pair engine/bare {string.Join(" ", ratios.Select(r => r.ToString("F3", CultureInfo.InvariantCulture)))}; " +
            $"the bare loop spends {decodeShare:P0} of its time in llama_decode)");

        var (cold, warm, reused) = await MeasureTimeToFirstTokenAsync(model, options);
        Console.Error.WriteLine($"ttft: 2000-token prompt cold {cold.TotalMilliseconds:F0} ms, with cached 1900-token prefix {warm.TotalMilliseconds:F0} ms ({reused} tokens reused)");

        double? peer8 = null;
        if (options.Peer != "skip")
        {
            peer8 = await RunPeerAsync(options);
        }

        var single = decode[1];
        var vsPeer = peer8 is > 0 ? (batch8 / peer8.Value).ToString("F2", CultureInfo.InvariantCulture) : "n/a";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"engine: single_tok_s={single:F1} batch8_tok_s={batch8:F1} batch_speedup={batch8 / single:F2} warm_ttft_speedup={cold / warm:F1} vs_peer={vsPeer} engine_efficiency={batch8 / bare8:F2}"));
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"detail: batch4_tok_s={decode[4]:F1} cold_ttft_ms={cold.TotalMilliseconds:F0} warm_ttft_ms={warm.TotalMilliseconds:F0} peer_batch8_tok_s={peer8?.ToString("F1", CultureInfo.InvariantCulture) ?? "n/a"} bare8_tok_s={bare8:F1}"));
        return 0;
    }

    /// <summary>The engine of the decode measurements; the bare loop's context is made from the same options.</summary>
    private static EngineOptions DecodeEngineOptions(BenchOptions options) => new()
    {
        Slots = 8,
        ContextSize = 8 * 1024,
        Threads = options.Threads,
        PrefixReuse = false,
    };

    /// <summary>Aggregate decode tokens/s with <paramref name="streams"/> concurrent requests: median of the runs after a warm-up run.</summary>
    private static async Task<double> MeasureDecodeAsync(LlamaModel model, BenchOptions options, int streams)
    {
        await using var engine = await InferenceEngine.StartAsync(model, DecodeEngineOptions(options));
        var results = new List<double>();
        for (var run = 0; run <= options.Runs; run++)
        {
            var rate = await RunEngineDecodeAsync(engine, model, options, streams);
            if (run > 0)
            {
                // Run 0 warms up.
                results.Add(rate);
            }
        }

        return Median(results);
    }

    /// <summary>
    /// 8-stream decode through the engine and through the bare loop on a context made the same way, in
    /// alternating runs (each pair's order flips) so that machine noise falls on both; medians of the pairs
    /// after one warm-up run of each, each pair's engine/bare ratio, and the bare loop's median share of time in llama_decode.
    /// </summary>
    private static async Task<(double Engine, double Bare, List<double> Ratios, double DecodeShare)> MeasureEngineAgainstBareLoopAsync(LlamaModel model, BenchOptions options)
    {
        const int Streams = 8;
        var engineOptions = DecodeEngineOptions(options);
        await using var engine = await InferenceEngine.StartAsync(model, engineOptions);
        using var bare = new BareDecodeLoop(model, engineOptions);
        var prompts = Enumerable.Range(0, Streams).Select(i => StreamPrompt(model, options, i)).ToList();
        var engineRates = new List<double>();
        var bareRates = new List<double>();
        var ratios = new List<double>();
        var decodeShares = new List<double>();
        for (var run = 0; run <= options.Runs; run++)
        {
            double engineRate;
            double bareRate;
            if (run % 2 == 0)
            {
                engineRate = await RunEngineDecodeAsync(engine, model, options, Streams);
                bareRate = bare.Run(prompts, options.Tokens);
            }
            else
            {
                bareRate = bare.Run(prompts, options.Tokens);
                engineRate = await RunEngineDecodeAsync(engine, model, options, Streams);
            }

            if (run > 0)
            {
                // Run 0 warms up both.
                engineRates.Add(engineRate);
                bareRates.Add(bareRate);
                ratios.Add(engineRate / bareRate);
                decodeShares.Add(bare.LastDecodeShare);
            }
        }

        return (Median(engineRates), Median(bareRates), ratios, Median(decodeShares));
    }

    /// <summary>
    /// One run of <paramref name="streams"/> concurrent requests: tokens after each stream's first one, over
    /// the time from the last first token to the last completion (prefill excluded, as the peer measures it).
    /// </summary>
    private static async Task<double> RunEngineDecodeAsync(InferenceEngine engine, LlamaModel model, BenchOptions options, int streams)
    {
        var clock = Stopwatch.StartNew();
        var firstTokens = new long[streams];
        var admissions = Enumerable.Range(0, streams).Select(i => engine.Submit(new GenerationRequest
        {
            PromptTokens = StreamPrompt(model, options, i),
            MaxTokens = options.Tokens,
            Sampling = SamplingParameters.Greedy,
            IgnoreEndOfGeneration = true,
        })).ToList();
        var tasks = admissions.Select(async (admission, i) =>
        {
            await foreach (var item in admission.Stream!.ReadAllAsync())
            {
                if (item is TokenEvent && firstTokens[i] == 0)
                {
                    firstTokens[i] = clock.ElapsedTicks;
                }
            }

            return clock.ElapsedTicks;
        });
        var ends = await Task.WhenAll(tasks);
        var seconds = (ends.Max() - firstTokens.Max()) / (double)Stopwatch.Frequency;
        return streams * (options.Tokens - 1) / seconds;
    }

    private static int[] StreamPrompt(LlamaModel model, BenchOptions options, int stream) =>
        Prompt(model, options.PromptTokens, $" [stream {stream}]");

    /// <summary>TTFT of a 2,000-token prompt on a cold engine and after a 1,900-token prefix of it was served.</summary>
    private static async Task<(TimeSpan Cold, TimeSpan Warm, int Reused)> MeasureTimeToFirstTokenAsync(LlamaModel model, BenchOptions options)
    {
        var colds = new List<TimeSpan>();
        var warms = new List<TimeSpan>();
        var reused = 0;
        for (var run = 0; run < options.Runs; run++)
        {
            var prompt = Prompt(model, 2000, $" run {run}", prefix: $"Conversation {run}. ");
            await using var engine = await InferenceEngine.StartAsync(model, new EngineOptions
            {
                Slots = 1,
                ContextSize = 4096,
                Threads = options.Threads,
            });
            var request = new GenerationRequest { PromptTokens = prompt, MaxTokens = 1, Sampling = SamplingParameters.Greedy };
            colds.Add((await (engine.Submit(request).Stream!.Completion)).Usage.TimeToFirstToken);

            await using var warmEngine = await InferenceEngine.StartAsync(model, new EngineOptions
            {
                Slots = 1,
                ContextSize = 4096,
                Threads = options.Threads,
            });
            await warmEngine.Submit(request with { PromptTokens = prompt[..1900] }).Stream!.Completion;
            var warm = await warmEngine.Submit(request).Stream!.Completion;
            warms.Add(warm.Usage.TimeToFirstToken);
            reused = warm.Usage.CachedPromptTokens;
        }

        return (Median(colds), Median(warms), reused);
    }

    private static async Task<double?> RunPeerAsync(BenchOptions options)
    {
        var peerDirectory = Path.Combine(FindRepositoryRoot(), "bench", "peer");
        if (!Directory.Exists(Path.Combine(peerDirectory, "node_modules", "node-llama-cpp")))
        {
            Console.Error.WriteLine("peer: npm install (node-llama-cpp 3.22.1, prebuilt binaries, no compiling)");
            await RunProcessAsync("npm", peerDirectory, "install", "--no-audit", "--no-fund");
        }

        var output = await RunProcessAsync("node", peerDirectory, "engine-peer.mjs", "--model", Path.GetFullPath(options.Model),
            "--threads", options.Threads.ToString(CultureInfo.InvariantCulture), "--tokens", options.Tokens.ToString(CultureInfo.InvariantCulture),
            "--prompt-tokens", options.PromptTokens.ToString(CultureInfo.InvariantCulture), "--streams", "1,4,8",
            "--runs", options.Runs.ToString(CultureInfo.InvariantCulture));
        using var json = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        double? batch8 = null;
        foreach (var result in json.RootElement.GetProperty("results").EnumerateArray())
        {
            var streams = result.GetProperty("streams").GetInt32();
            var rate = result.GetProperty("decode_tok_s").GetDouble();
            Console.Error.WriteLine($"peer decode: {streams} stream(s): {rate:F1} tokens/s");
            if (streams == 8)
            {
                batch8 = rate;
            }
        }

        return batch8;
    }

    /// <summary>Exactly <paramref name="count"/> tokens of fixed English text (the peer builds its prompts the same way).</summary>
    private static int[] Prompt(LlamaModel model, int count, string suffix, string prefix = "")
    {
        var tail = model.Tokenize(suffix);
        var head = model.Tokenize(prefix);
        var body = new List<int>(head);
        var text = model.Tokenize(Text);
        while (body.Count < count - tail.Length)
        {
            body.AddRange(text);
        }

        return [.. body.Take(count - tail.Length), .. tail];
    }

    private static async Task<string> RunProcessAsync(string file, string directory, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}.");
        }

        return output;
    }

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "GpuFleet.sln")))
            {
                return directory.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    private static TimeSpan Median(List<TimeSpan> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}

internal sealed record BenchOptions(string Model, int Threads, int Tokens, int PromptTokens, int Runs, string Peer, int GpuLayers)
{
    public static BenchOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                throw new ArgumentException($"Unexpected argument '{args[i]}'.");
            }

            values[args[i][2..]] = args[i + 1];
        }

        int Int(string name, int fallback) => values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        var model = values.GetValueOrDefault("model") ?? throw new ArgumentException("--model <small.gguf> is required.");
        return new BenchOptions(model, Int("threads", Environment.ProcessorCount), Int("tokens", 64), Int("prompt-tokens", 64), Int("runs", 3),
            values.GetValueOrDefault("peer") ?? "auto", Int("gpu-layers", 0));
    }
}
