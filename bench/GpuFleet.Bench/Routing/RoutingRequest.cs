using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GpuFleet.Bench.Routing;

/// <summary>
/// Sends one streamed chat completion through the gateway and times it: first content chunk (time to first token), the
/// gaps between content chunks (inter-token), and the usage chunk (prompt and cached tokens).
/// </summary>
internal static class RoutingRequest
{
    public static async Task<RequestOutcome> SendAsync(HttpClient http, Uri endpoint, JsonObject body, string kind, double oracleShare, double speedup, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint)
        {
            Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body)) { Headers = { { "Content-Type", "application/json" } } },
        };
        var start = Stopwatch.GetTimestamp();
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
            var worker = response.Headers.TryGetValues("x-gpufleet-worker", out var values) ? values.FirstOrDefault() : null;
            var route = response.Headers.TryGetValues("x-gpufleet-route", out var reasons) ? reasons.FirstOrDefault() : null;
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var text = await response.Content.ReadAsStringAsync(cancel);
                return Failed(kind, $"{(int)response.StatusCode}: {text[..Math.Min(200, text.Length)]}", worker);
            }

            await using var stream = await response.Content.ReadAsStreamAsync(cancel);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            long first = 0, last = 0;
            var gaps = new List<double>();
            var tokens = 0;
            int promptTokens = 0, cachedTokens = 0;
            while (await reader.ReadLineAsync(cancel) is { } line)
            {
                if (!line.StartsWith("data: {", StringComparison.Ordinal))
                {
                    continue;
                }

                if (line.Contains("\"prompt_tokens\"", StringComparison.Ordinal))
                {
                    using var json = JsonDocument.Parse(line.AsMemory(6));
                    if (json.RootElement.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                    {
                        promptTokens = usage.GetProperty("prompt_tokens").GetInt32();
                        cachedTokens = usage.TryGetProperty("prompt_tokens_details", out var details) && details.ValueKind == JsonValueKind.Object
                            ? details.GetProperty("cached_tokens").GetInt32() : 0;
                    }
                }

                if (line.Contains("\"content\":\"", StringComparison.Ordinal) && !line.Contains("\"content\":\"\"", StringComparison.Ordinal))
                {
                    var now = Stopwatch.GetTimestamp();
                    if (first == 0)
                    {
                        first = now;
                    }
                    else
                    {
                        gaps.Add(Stopwatch.GetElapsedTime(last, now).TotalSeconds * speedup);
                    }

                    last = now;
                    tokens++;
                }
            }

            if (first == 0)
            {
                return Failed(kind, "no content arrived", worker);
            }

            return new RequestOutcome(kind, true, Stopwatch.GetElapsedTime(start, first).TotalSeconds * speedup, gaps, tokens,
                promptTokens, cachedTokens, Math.Min(promptTokens - 1, oracleShare * promptTokens), worker, null, route);
        }
        catch (HttpRequestException ex)
        {
            return Failed(kind, ex.Message, null);
        }
    }

    private static RequestOutcome Failed(string kind, string error, string? worker) => new(kind, false, 0, [], 0, 0, 0, 0, worker, error);
}
