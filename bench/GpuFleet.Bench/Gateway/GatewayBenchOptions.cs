namespace GpuFleet.Bench.Gateway;

/// <summary>The gateway benchmark's command line; every value has a default.</summary>
internal sealed record GatewayBenchOptions(string? Model, int Concurrency, int Requests, int Rounds, int WarmupSeconds, int MaxTokens, int NginxWorkers, int Decisions)
{
    public const string Usage =
        "gateway [--model <file.gguf>] [--concurrency 16] [--requests 60000] [--rounds 20] [--warmup-seconds 15] [--max-tokens 4] [--nginx-workers <cores>] [--decisions 20000]";

    public static GatewayBenchOptions Parse(string[] args)
    {
        var read = new BenchOptionReader(args,
            ["--model", "--concurrency", "--requests", "--rounds", "--warmup-seconds", "--max-tokens", "--nginx-workers", "--decisions"]);
        var options = new GatewayBenchOptions(
            read.Text("--model"),
            read.Int("--concurrency", 16, 1),
            read.Int("--requests", 60000, 1),
            read.Int("--rounds", 20, 1),
            // Load per path before measuring, long enough for tiered compilation (tier 0, instrumented, optimized) to settle
            // in the worker and the gateway: on 2 vCPU the gateway needs about 70,000 requests (7 s) to reach its steady
            // rate; measured after 2,000 requests, as this benchmark once did, it still ran at a third of that.
            read.Int("--warmup-seconds", 15, 0),
            read.Int("--max-tokens", 4, 1),
            read.Int("--nginx-workers", Environment.ProcessorCount, 1),
            // Routing decisions timed in process against a real redis-server (decision_p99_us).
            read.Int("--decisions", 20000, 100));
        if (options.Model is { } model && !File.Exists(model))
        {
            read.AddError($"--model '{model}' does not exist.");
        }

        read.ThrowIfErrors();
        return options;
    }
}
