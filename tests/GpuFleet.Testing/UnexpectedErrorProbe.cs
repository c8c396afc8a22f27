using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace GpuFleet.Testing;

/// <summary>What a catch-all error middleware sent for a request whose handler threw.</summary>
public sealed record UnexpectedErrorResponse(int Status, string? ContentType, bool HeaderFromBeforeKept, string? Type, string? Code, bool MessageLeaksException);

/// <summary>
/// Runs a host's catch-all error middleware (the worker's and the gateway's) around a handler that sets
/// stream headers and then throws, and reads back what the client would have received.
/// </summary>
public static class UnexpectedErrorProbe
{
    private const string Secret = "secret internals";

    public static async Task<UnexpectedErrorResponse> ThrowThroughAsync(Func<HttpContext, RequestDelegate, Task> middleware)
    {
        ArgumentNullException.ThrowIfNull(middleware);
        var context = NewContext();
        await middleware(context, c =>
        {
            c.Response.ContentType = "text/event-stream";
            c.Response.Headers["x-partial"] = "1";
            throw new InvalidOperationException(Secret);
        });

        context.Response.Body.Position = 0;
        using var body = await JsonDocument.ParseAsync(context.Response.Body);
        var error = body.RootElement.GetProperty("error");
        return new UnexpectedErrorResponse(
            context.Response.StatusCode,
            context.Response.ContentType,
            context.Response.Headers.ContainsKey("x-partial"),
            error.GetProperty("type").GetString(),
            error.GetProperty("code").GetString(),
            error.GetProperty("message").GetString()!.Contains(Secret, StringComparison.Ordinal));
    }

    /// <summary>Runs the middleware around a cancelled handler: what it let through, and the status it left.</summary>
    public static async Task<(Exception? Thrown, int Status)> CancelThroughAsync(Func<HttpContext, RequestDelegate, Task> middleware)
    {
        ArgumentNullException.ThrowIfNull(middleware);
        var context = NewContext();
        try
        {
            await middleware(context, _ => throw new OperationCanceledException());
            return (null, context.Response.StatusCode);
        }
        catch (OperationCanceledException ex)
        {
            return (ex, context.Response.StatusCode);
        }
    }

    private static DefaultHttpContext NewContext() => new()
    {
        RequestServices = new ServiceCollection().AddLogging().BuildServiceProvider(),
        Response = { Body = new MemoryStream() },
    };
}
