using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GpuFleet.Bench.Peer;

/// <summary>
/// The one client both servers get: streaming <c>/v1/completions</c>, greedy, <c>ignore_eos</c> (exactly max_tokens
/// tokens), usage in the last chunk. Prompts are text, the same for both servers in a round and new in every round and
/// stream, so neither server finds any of it cached.
/// </summary>
internal sealed class CompletionStreams(HttpClient http, string model)
{
    private const int HeaderTokens = 8;

    private static readonly string[] Words =
    [
        "time", "people", "water", "house", "river", "light", "music", "garden", "letter", "window", "morning", "table", "paper",
        "story", "friend", "city", "market", "forest", "money", "school", "street", "winter", "summer", "family", "doctor",
        "mountain", "island", "animal", "number", "answer", "question", "picture", "kitchen", "engine", "teacher", "village",
        "problem", "country", "minute", "travel", "bridge", "station", "ticket", "history", "language", "science", "power",
    ];

    /// <summary>
    /// A prompt of about <paramref name="tokens"/> tokens that no other call returns (seeded by <paramref name="id"/>): a
    /// short header, then common words of one token each (with their leading space). Both servers report what they counted.
    /// </summary>
    public static string Prompt(string id, int tokens)
    {
        var words = tokens - HeaderTokens;
        // FNV-1a of the id: the same words in every run of the benchmark (string hash codes are randomised per process).
        var seed = 2166136261;
        foreach (var c in id)
        {
            seed = (seed ^ c) * 16777619;
        }

        var random = new Random((int)(seed & int.MaxValue));
        var text = new StringBuilder($"Request {id}:", words * 8);
        for (var i = 0; i < words; i++)
        {
            text.Append(' ').Append(Words[random.Next(Words.Length)]);
        }

        return text.ToString();
    }

    /// <summary><paramref name="prompts"/>.Length streams at once: generated tokens per second of wall time, from the first request sent to the last token.</summary>
    public async Task<StreamsResult> RunAsync(IReadOnlyList<string> prompts, int tokens, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var results = await Task.WhenAll(prompts.Select(prompt => StreamAsync(prompt, tokens, clock, cancellationToken)));
        var wall = results.Max(r => r.Done);
        var generated = results.Sum(r => r.CompletionTokens);
        return new StreamsResult(generated / wall.TotalSeconds, results.Min(r => r.PromptTokens), results.Max(r => r.PromptTokens));
    }

    /// <summary>One stream, timed from sending to its first generated text: the cold time to first token.</summary>
    public async Task<(TimeSpan FirstToken, int PromptTokens)> FirstTokenAsync(string prompt, CancellationToken cancellationToken)
    {
        var result = await StreamAsync(prompt, tokens: 2, Stopwatch.StartNew(), cancellationToken);
        return (result.FirstToken, result.PromptTokens);
    }

    private async Task<StreamResult> StreamAsync(string prompt, int tokens, Stopwatch clock, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["prompt"] = prompt,
            ["max_tokens"] = tokens,
            ["temperature"] = 0,
            ["ignore_eos"] = true,
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/v1/completions", UriKind.Relative))
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, new MediaTypeHeaderValue("application/json")),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"/v1/completions answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        TimeSpan? first = null;
        int? promptTokens = null, completionTokens = null;
        while (await reader.ReadLineAsync(cancellationToken) is { } line && line != "data: [DONE]")
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
            {
                continue;
            }

            using var chunk = JsonDocument.Parse(line.AsMemory("data: ".Length));
            var root = chunk.RootElement;
            if (first is null && root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array
                && choices.GetArrayLength() > 0 && choices[0].TryGetProperty("text", out var text) && text.GetString() is { Length: > 0 })
            {
                first = clock.Elapsed;
            }

            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                promptTokens = usage.GetProperty("prompt_tokens").GetInt32();
                completionTokens = usage.GetProperty("completion_tokens").GetInt32();
            }
        }

        if (completionTokens != tokens || promptTokens is null)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"asked for {tokens} tokens with ignore_eos, the usage says {completionTokens?.ToString(CultureInfo.InvariantCulture) ?? "nothing"}: the runs would not compare."));
        }

        return new StreamResult(first ?? clock.Elapsed, clock.Elapsed, promptTokens.Value, completionTokens.Value);
    }

    private sealed record StreamResult(TimeSpan FirstToken, TimeSpan Done, int PromptTokens, int CompletionTokens);
}

/// <summary>Streams run together: their generated tokens per second, and the prompt sizes the server counted.</summary>
internal sealed record StreamsResult(double TokensPerSecond, int MinPromptTokens, int MaxPromptTokens);
