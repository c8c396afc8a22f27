using System.Globalization;
using System.Text.RegularExpressions;
using GpuFleet.Bench.Gateway;

namespace GpuFleet.Bench.Peer;

/// <summary>
/// llama.cpp's own <c>llama-batched-bench</c> on the same model, threads and context: B sequences of the same prompt
/// and generation lengths decoded together, no server around them. Its S_TG (generation tokens per second) is the
/// ceiling a server on these libraries and settings can reach.
/// </summary>
internal static partial class BatchedBench
{
    /// <summary>S_TG by batch size (the stream counts).</summary>
    public static async Task<IReadOnlyDictionary<int, double>> RunAsync(PeerOptions options, ChildProcesses processes, CancellationToken cancellationToken)
    {
        string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
        var child = processes.Start("llama-batched-bench", Path.Combine(options.ServerBin, "llama-batched-bench"),
        [
            "--model", options.Model, "--threads", Text(options.Threads), "--threads-batch", Text(options.Threads),
            "--ctx-size", Text(options.Slots * options.ContextPerSlot), "--kv-unified",
            "-npp", Text(options.PromptTokens), "-ntg", Text(options.Tokens), "-npl", string.Join(',', options.Streams),
        ]);
        await child.Process.WaitForExitAsync(cancellationToken);
        if (child.Process.ExitCode != 0)
        {
            throw new InvalidOperationException($"llama-batched-bench exited with {child.Process.ExitCode}:\n{child.Output}");
        }

        // | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
        var rates = new Dictionary<int, double>();
        foreach (Match row in TableRow().Matches(child.Output))
        {
            rates[int.Parse(row.Groups["b"].Value, CultureInfo.InvariantCulture)] = double.Parse(row.Groups["stg"].Value, CultureInfo.InvariantCulture);
        }

        return rates.Count == options.Streams.Count
            ? rates
            : throw new InvalidOperationException($"llama-batched-bench printed no result row for each batch size:\n{child.Output}");
    }

    [GeneratedRegex(@"^\|\s*\d+\s*\|\s*\d+\s*\|\s*(?<b>\d+)\s*\|\s*\d+\s*\|\s*[\d.]+\s*\|\s*[\d.]+\s*\|\s*[\d.]+\s*\|\s*(?<stg>[\d.]+)\s*\|", RegexOptions.Multiline)]
    private static partial Regex TableRow();
}
