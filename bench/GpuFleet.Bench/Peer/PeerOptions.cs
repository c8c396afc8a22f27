using GpuFleet.Testing;

namespace GpuFleet.Bench.Peer;

/// <summary>The peer benchmark's command line: the worker and llama.cpp's own llama-server on the same model and settings.</summary>
internal sealed record PeerOptions(
    string Model, string ServerBin, int Threads, int Slots, int ContextPerSlot, int Tokens, int PromptTokens, int Rounds, int ColdPromptTokens, IReadOnlyList<int> Streams)
{
    public const string Usage =
        "peer --model <file.gguf> [--server-bin <dir with llama-server, llama-batched-bench>] [--threads 2] [--slots 8] [--ctx-per-slot 4096] " +
        "[--tokens 64] [--prompt-tokens 64] [--rounds 5] [--cold-prompt-tokens 2000] [--streams 1,8]";

    public static PeerOptions Parse(string[] args)
    {
        var read = new BenchOptionReader(args,
            ["--model", "--server-bin", "--threads", "--slots", "--ctx-per-slot", "--tokens", "--prompt-tokens", "--rounds", "--cold-prompt-tokens", "--streams"]);
        var model = read.Text("--model");
        if (model is null || !File.Exists(model))
        {
            read.AddError(model is null ? "--model <file.gguf> is required (run.sh's demo model: artifacts/demo-models/demo-qwen35-small.gguf)." : $"--model '{model}' does not exist.");
        }

        var serverBin = read.Text("--server-bin") ?? NewestBuild();
        if (serverBin is null || !File.Exists(Path.Combine(serverBin, "llama-server")) || !File.Exists(Path.Combine(serverBin, "llama-batched-bench")))
        {
            read.AddError($"No llama-server build{(serverBin is null ? "" : $" in '{serverBin}'")}: run bench/peer/build-llama-server.sh first (it prints the folder for --server-bin).");
        }

        var slots = read.Int("--slots", 8, 1, 256);
        var streams = read.Value<IReadOnlyList<int>>("--streams", [1, 8], text =>
            [.. text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(part => BenchOptionReader.Int("--streams", part, 1, slots))]);
        var options = new PeerOptions(
            Path.GetFullPath(model ?? "."), Path.GetFullPath(serverBin ?? "."),
            read.Int("--threads", 2, 1), slots, read.Int("--ctx-per-slot", 4096, 256), read.Int("--tokens", 64, 2),
            read.Int("--prompt-tokens", 64, 16), read.Int("--rounds", 5, 1), read.Int("--cold-prompt-tokens", 2000, 16), streams);
        read.ThrowIfErrors();
        return options;
    }

    /// <summary>
    /// The newest folder that bench/peer/build-llama-server.sh filled (artifacts/llama-server/&lt;commit&gt;/bin), its default
    /// OpenMP build before a --no-openmp one: llama-server as llama.cpp builds it.
    /// </summary>
    private static string? NewestBuild()
    {
        var root = RepositoryPaths.Of("artifacts", "llama-server");
        return Directory.Exists(root)
            ? Directory.GetDirectories(root).Where(d => Directory.Exists(Path.Combine(d, "bin")))
                .OrderBy(d => d.EndsWith("-noomp", StringComparison.Ordinal)).ThenByDescending(Directory.GetLastWriteTimeUtc)
                .Select(d => Path.Combine(d, "bin")).FirstOrDefault()
            : null;
    }
}
