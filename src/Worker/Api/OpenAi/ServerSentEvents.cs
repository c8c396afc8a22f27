using GpuFleet.Worker.Engine;
using GpuFleet.Contracts;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>The OpenAI streaming format: <c>data: {json}</c> events, ended by <c>data: [DONE]</c>.</summary>
internal static class ServerSentEvents
{
    public static void Start(HttpResponse response)
    {
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        // Proxies (nginx) must not buffer a token stream.
        response.Headers["X-Accel-Buffering"] = "no";
    }

    public static async Task WriteAsync(HttpResponse response, string json, CancellationToken cancellationToken)
    {
        await response.Body.WriteAsync(Encoding.UTF8.GetBytes("data: " + json + "\n\n"), cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    /// <summary>Ends the stream: the usage comment for the gateway (clients ignore SSE comments), then <c>[DONE]</c>.</summary>
    public static async Task DoneAsync(HttpResponse response, GenerationUsage usage, CancellationToken cancellationToken)
    {
        var report = new UsageReport(usage.PromptTokens, usage.CompletionTokens, usage.CachedPromptTokens);
        await response.Body.WriteAsync(Encoding.UTF8.GetBytes(UsageReport.CommentPrefix + report + "\n\n"), cancellationToken);
        await WriteAsync(response, "[DONE]", cancellationToken);
    }

    /// <summary>The usage header of a JSON (non-streamed) response, for the gateway.</summary>
    public static void UsageHeader(HttpResponse response, GenerationUsage usage) =>
        response.Headers[GpuFleetHeaders.Usage] = new UsageReport(usage.PromptTokens, usage.CompletionTokens, usage.CachedPromptTokens).ToString();
}
