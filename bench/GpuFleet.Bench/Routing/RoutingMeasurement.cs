using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GpuFleet.Bench.Routing;

/// <summary>What one request measured, in modelled seconds (real seconds times the speed-up).</summary>
internal sealed record RequestOutcome(
    string Kind, bool Ok, double TimeToFirstToken, IReadOnlyList<double> Gaps, int OutputTokens,
    int PromptTokens, int CachedTokens, double OracleTokens, string? Worker, string? Error);

/// <summary>Per policy and workload: the figures of the table.</summary>
internal sealed record RunSummary(
    string Policy, string Workload, double Load, int Requests, int Failed,
    double TtftP50, double TtftP90, double TtftP99, double InterTokenP99, double TokensPerSecond,
    double HitRatio, double HitVsOracle, double Imbalance)
{
    public static RunSummary Of(string policy, string workload, double load, IReadOnlyList<RequestOutcome> outcomes, double modelledSeconds, int workers)
    {
        var ok = outcomes.Where(o => o.Ok).ToList();
        var ttft = ok.Select(o => o.TimeToFirstToken).Order().ToList();
        var gaps = ok.SelectMany(o => o.Gaps).Order().ToList();
        var prompt = ok.Sum(o => (double)o.PromptTokens);
        var cached = ok.Sum(o => (double)o.CachedTokens);
        var oracle = ok.Sum(o => o.OracleTokens);
        // Work per worker: the tokens it had to prefill plus those it generated.
        var work = ok.GroupBy(o => o.Worker ?? "?").Select(g => g.Sum(o => (double)(o.PromptTokens - o.CachedTokens + o.OutputTokens))).ToList();
        while (work.Count < workers)
        {
            work.Add(0);
        }

        return new RunSummary(policy, workload, load, outcomes.Count, outcomes.Count - ok.Count,
            Percentile(ttft, 0.50), Percentile(ttft, 0.90), Percentile(ttft, 0.99), Percentile(gaps, 0.99),
            ok.Sum(o => o.OutputTokens) / Math.Max(1e-9, modelledSeconds),
            prompt == 0 ? 0 : cached / prompt, oracle == 0 ? 1 : cached / oracle,
            work.Count == 0 || work.Average() == 0 ? 0 : work.Max() / work.Average());
    }

    /// <summary>Nearest-rank percentile of sorted values; NaN when there are none.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}

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
                promptTokens, cachedTokens, Math.Min(promptTokens - 1, oracleShare * promptTokens), worker, null);
        }
        catch (HttpRequestException ex)
        {
            return Failed(kind, ex.Message, null);
        }
    }

    private static RequestOutcome Failed(string kind, string error, string? worker) => new(kind, false, 0, [], 0, 0, 0, 0, worker, error);
}
