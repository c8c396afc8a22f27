using System.Globalization;

namespace GpuFleet.Bench.Peer;

/// <summary>The peer benchmark's command line: the worker and llama.cpp's own llama-server on the same model and settings.</summary>
internal sealed record PeerOptions(
    string Model, string ServerBin, int Threads, int Slots, int ContextPerSlot, int Tokens, int PromptTokens, int Rounds, int ColdPromptTokens, IReadOnlyList<int> Streams)
{
    public const string Usage =
        "peer --model <file.gguf> [--server-bin <dir with llama-server, llama-batched-bench>] [--threads 2] [--slots 8] [--ctx-per-slot 4096] " +
        "[--tokens 64] [--prompt-tokens 64] [--rounds 5] [--cold-prompt-tokens 2000] [--streams 1,8]";

    private static readonly string[] Known = ["model", "server-bin", "threads", "slots", "ctx-per-slot", "tokens", "prompt-tokens", "rounds", "cold-prompt-tokens", "streams"];

    public static PeerOptions Parse(string[] args)
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

        var model = values.GetValueOrDefault("model");
        if (model is null || !File.Exists(model))
        {
            errors.Add(model is null ? "--model <file.gguf> is required (run.sh's demo model: artifacts/demo-models/demo-qwen35-small.gguf)." : $"--model '{model}' does not exist.");
        }

        var serverBin = values.GetValueOrDefault("server-bin") ?? NewestBuild();
        if (serverBin is null || !File.Exists(Path.Combine(serverBin, "llama-server")) || !File.Exists(Path.Combine(serverBin, "llama-batched-bench")))
        {
            errors.Add($"No llama-server build{(serverBin is null ? "" : $" in '{serverBin}'")}: run bench/peer/build-llama-server.sh first (it prints the folder for --server-bin).");
        }

        var streams = new List<int>();
        foreach (var part in (values.GetValueOrDefault("streams") ?? "1,8").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (int.TryParse(part, CultureInfo.InvariantCulture, out var count) && count >= 1)
            {
                streams.Add(count);
            }
            else
            {
                errors.Add($"--streams takes stream counts such as 1,8, not '{part}'.");
            }
        }

        var options = new PeerOptions(
            Path.GetFullPath(model ?? "."), Path.GetFullPath(serverBin ?? "."),
            Int("threads", 2, 1), Int("slots", 8, 1), Int("ctx-per-slot", 4096, 256), Int("tokens", 64, 2),
            Int("prompt-tokens", 64, 16), Int("rounds", 5, 1), Int("cold-prompt-tokens", 2000, 16), streams);
        if (options.Streams.Any(s => s > options.Slots))
        {
            errors.Add($"--streams may not exceed --slots ({options.Slots}): a queued stream would measure the queue, not decoding.");
        }

        return errors.Count == 0 ? options : throw new ArgumentException(string.Join(" ", errors));
    }

    /// <summary>The newest folder that bench/peer/build-llama-server.sh filled (artifacts/llama-server/&lt;commit&gt;/bin).</summary>
    private static string? NewestBuild()
    {
        var root = Path.Combine(RepositoryRoot(), "artifacts", "llama-server");
        return Directory.Exists(root)
            ? Directory.GetDirectories(root).Select(d => Path.Combine(d, "bin")).Where(Directory.Exists)
                .OrderByDescending(Directory.GetLastWriteTimeUtc).FirstOrDefault()
            : null;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "GpuFleet.sln")))
            {
                return dir.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }
}
