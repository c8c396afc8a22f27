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

    public static Task DoneAsync(HttpResponse response, CancellationToken cancellationToken) =>
        WriteAsync(response, "[DONE]", cancellationToken);
}
