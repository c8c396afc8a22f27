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
        var model = Path.GetFullPath(Option(args, "--model") ?? throw new ArgumentException("agent needs --model <file.gguf> (run.sh's demo model: artifacts/demo-models/demo-qwen35-small.gguf)"));
        var runs = int.Parse(Option(args, "--runs") ?? "3", CultureInfo.InvariantCulture);
        var threads = Option(args, "--threads") ?? Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture);
        // Worker defaults (run.sh's) unless a context is given: a model trained on fewer tokens than an agent prompt needs one.
        string[] context = Option(args, "--ctx-size") is { } size ? ["--ctx-size", size] : [];
        await using var worker = await WorkerProcess.StartAsync(model, ["--name", "agent-bench", "--threads", threads, .. context]);
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

        var (idleGap, prefillGap, prefillGapMax) = await MeasureInterferenceAsync(http, modelId);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"interference: a running stream's inter-token gap p50 {idleGap:F0} ms alone; during a cold agent prefill p50 {prefillGap:F0} ms, max {prefillGapMax:F0} ms"));

        var coldMs = Median(cold);
        var warmMs = Median(warm);
        var nextMs = Median(next);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"agent: prompt_tokens={cold[0].PromptTokens} cold_ttft_ms={coldMs:F0} warm_ttft_ms={warmMs:F0} next_turn_ttft_ms={nextMs:F0} " +
            $"warm_speedup={coldMs / warmMs:F1} next_turn_speedup={coldMs / nextMs:F1} warm_cached={warm[0].CachedTokens} next_turn_cached={next[0].CachedTokens} " +
            $"prefill_itl_max_ms={prefillGapMax:F0}"));
        return 0;
    }

    /// <summary>
    /// Chunked prefill, seen from a running stream: its inter-token gaps alone, then while a new agent's cold ~14,000-token
    /// prompt is prefilled beside it (each step carries the stream's next token and at most one batch of prompt tokens).
    /// </summary>
    private static async Task<(double IdleP50, double PrefillP50, double PrefillMax)> MeasureInterferenceAsync(HttpClient http, string modelId)
    {
        var gaps = new List<(TimeSpan At, TimeSpan Gap)>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        var stream = Task.Run(async () =>
        {
            var body = new JsonObject
            {
                ["model"] = modelId,
                ["stream"] = true,
                ["max_tokens"] = 100_000,
                ["ignore_eos"] = true,
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Write a long story." }),
            };
            var cancel = stop.Token;
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/v1/chat/completions", UriKind.Relative))
            {
                Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
            };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel));
            var last = TimeSpan.Zero;
            while (await reader.ReadLineAsync(cancel) is { } line && line != "data: [DONE]")
            {
                if (line.StartsWith("data: ", StringComparison.Ordinal) && line.Contains("\"delta\"", StringComparison.Ordinal))
                {
                    var now = clock.Elapsed;
                    if (last != TimeSpan.Zero)
                    {
                        lock (gaps)
                        {
                            gaps.Add((now, now - last));
                        }
                    }

                    last = now;
                }
            }
        });

        await Task.Delay(TimeSpan.FromSeconds(5));
        var prefillStart = clock.Elapsed;
        var agent = AgentWorkload.FirstRequest(modelId, "Refactor Service2.", AgentWorkload.SystemPrompt(agent: $"interference-{Environment.TickCount64}"), maxTokens: 1);
        var ttft = await MeasureAsync(http, agent);
        var prefillEnd = prefillStart + ttft.TimeToFirstToken;
        await stop.CancelAsync();
        try
        {
            await stream;
        }
        catch (OperationCanceledException)
        {
            // Closing the connection ends the stream on the worker; the gaps are already recorded.
        }

        List<(TimeSpan At, TimeSpan Gap)> recorded;
        lock (gaps)
        {
            recorded = [.. gaps];
        }

        var idle = recorded.Where(g => g.At < prefillStart).Select(g => g.Gap.TotalMilliseconds).Order().ToList();
        var during = recorded.Where(g => g.At > prefillStart && g.At <= prefillEnd).Select(g => g.Gap.TotalMilliseconds).Order().ToList();
        return (idle.Count > 0 ? idle[idle.Count / 2] : double.NaN, during.Count > 0 ? during[during.Count / 2] : double.NaN, during.Count > 0 ? during[^1] : double.NaN);
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
