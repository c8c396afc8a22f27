using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuFleet.Testing;

namespace GpuFleet.Bench;

/// <summary>
/// Time to first token for a coding agent's workload on one real worker process (run.sh's demo model and defaults):
/// a cold first request (~60 KB: system prompt, ten tools, context), a second conversation with the same system
/// prompt and tools (warm), and the first conversation's next turn (an assistant tool call and its result appended).
/// Each run uses its own agent name, so no run reuses another's cache; medians over the runs.
/// </summary>
internal static class AgentBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var model = Option(args, "--model") ?? throw new ArgumentException("agent needs --model <file.gguf> (run.sh's demo model: artifacts/demo-models/demo-qwen35-small.gguf)");
        var runs = int.Parse(Option(args, "--runs") ?? "3", CultureInfo.InvariantCulture);
        var threads = Option(args, "--threads") ?? Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture);
        await using var worker = await WorkerProcess.StartAsync(model, "--name", "agent-bench", "--threads", threads);
        using var http = new HttpClient { BaseAddress = worker.BaseAddress, Timeout = TimeSpan.FromMinutes(30) };
        using var models = JsonDocument.Parse(await http.GetStringAsync(new Uri("/v1/models", UriKind.Relative)));
        var modelId = models.RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;

        var cold = new List<Measurement>();
        var warm = new List<Measurement>();
        var next = new List<Measurement>();
        for (var run = 0; run < runs; run++)
        {
            var system = AgentWorkload.SystemPrompt(agent: $"coder-{run}-{Environment.TickCount64}");
            var first = AgentWorkload.FirstRequest(modelId, "Add input validation to Service3.", system, maxTokens: 8);
            cold.Add(await MeasureAsync(http, first));
            warm.Add(await MeasureAsync(http, AgentWorkload.FirstRequest(modelId, "Write tests for Service7.", system, maxTokens: 8)));
            next.Add(await MeasureAsync(http, AgentWorkload.NextTurn(first, 1)));
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"run {run + 1}/{runs}: cold {cold[^1]}, warm {warm[^1]}, next turn {next[^1]}"));
        }

        var coldMs = Median(cold);
        var warmMs = Median(warm);
        var nextMs = Median(next);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"agent: prompt_tokens={cold[0].PromptTokens} cold_ttft_ms={coldMs:F0} warm_ttft_ms={warmMs:F0} next_turn_ttft_ms={nextMs:F0} " +
            $"warm_speedup={coldMs / warmMs:F1} next_turn_speedup={coldMs / nextMs:F1} warm_cached={warm[0].CachedTokens} next_turn_cached={next[0].CachedTokens}"));
        return 0;
    }

    private static double Median(List<Measurement> values)
    {
        var sorted = values.Select(v => v.TimeToFirstToken.TotalMilliseconds).Order().ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>Streams the request and times the first chunk that carries generated text (or reasoning).</summary>
    private static async Task<Measurement> MeasureAsync(HttpClient http, JsonObject body)
    {
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/v1/chat/completions", UriKind.Relative))
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        TimeSpan? first = null;
        int prompt = 0, cached = 0;
        while (await reader.ReadLineAsync() is { } line && line != "data: [DONE]")
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
            {
                continue;
            }

            using var chunk = JsonDocument.Parse(line["data: ".Length..]);
            var root = chunk.RootElement;
            if (first is null && root.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0
                && choices[0].TryGetProperty("delta", out var delta) && (delta.TryGetProperty("content", out _) || delta.TryGetProperty("reasoning_content", out _) || delta.TryGetProperty("tool_calls", out _)))
            {
                first = clock.Elapsed;
            }

            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                prompt = usage.GetProperty("prompt_tokens").GetInt32();
                cached = usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
            }
        }

        return new Measurement(first ?? clock.Elapsed, prompt, cached);
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private sealed record Measurement(TimeSpan TimeToFirstToken, int PromptTokens, int CachedTokens)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture,
            $"{TimeToFirstToken.TotalMilliseconds:F0} ms ({CachedTokens}/{PromptTokens} cached)");
    }
}
