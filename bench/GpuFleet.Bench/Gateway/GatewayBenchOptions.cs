using System.Globalization;

namespace GpuFleet.Bench.Gateway;

/// <summary>The gateway benchmark's command line; every value has a default.</summary>
internal sealed record GatewayBenchOptions(string? Model, int Concurrency, int Requests, int Rounds, int WarmupSeconds, int MaxTokens, int NginxWorkers, int Decisions)
{
    public const string Usage =
        "gateway [--model <file.gguf>] [--concurrency 16] [--requests 60000] [--rounds 20] [--warmup-seconds 15] [--max-tokens 4] [--nginx-workers <cores>] [--decisions 20000]";

    private static readonly string[] Known = ["model", "concurrency", "requests", "rounds", "warmup-seconds", "max-tokens", "nginx-workers", "decisions"];

    public static GatewayBenchOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || !Known.Contains(args[i][2..]))
            {
                throw new ArgumentException($"Unknown argument '{args[i]}'.");
            }

            if (i + 1 >= args.Length)
            {
                throw new ArgumentException($"{args[i]} needs a value.");
            }

            values[args[i][2..]] = args[i + 1];
        }

        var errors = new List<string>();
        int Int(string name, int fallback, int min)
        {
            if (!values.TryGetValue(name, out var text))
            {
                return fallback;
            }

            if (!int.TryParse(text, CultureInfo.InvariantCulture, out var value) || value < min)
            {
                errors.Add($"--{name} must be an integer of at least {min}, not '{text}'.");
            }

            return value;
        }

        var options = new GatewayBenchOptions(
            values.GetValueOrDefault("model"),
            Int("concurrency", 16, 1),
            Int("requests", 60000, 1),
            Int("rounds", 20, 1),
            // Load per path before measuring, long enough for tiered compilation (tier 0, instrumented, optimized) to settle
            // in the worker and the gateway: on 2 vCPU the gateway needs about 70,000 requests (7 s) to reach its steady
            // rate; measured after 2,000 requests, as this benchmark once did, it still ran at a third of that.
            Int("warmup-seconds", 15, 0),
            Int("max-tokens", 4, 1),
            Int("nginx-workers", Environment.ProcessorCount, 1),
            // Routing decisions timed in process against a real redis-server (decision_p99_us).
            Int("decisions", 20000, 100));
        if (options.Model is { } model && !File.Exists(model))
        {
            errors.Add($"--model '{model}' does not exist.");
        }

        return errors.Count == 0 ? options : throw new ArgumentException(string.Join(" ", errors));
    }
}
