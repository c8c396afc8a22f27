using GpuFleet.Gateway.Forwarding;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.Hosting;

/// <summary>
/// The gateway's one catch-all for request handling (ASP.NET Core's exception handler middleware calls it): an
/// unexpected exception becomes an OpenAI-shaped 500 <c>server_error</c>, or gRPC status INTERNAL for a gRPC call,
/// without the exception's text; the exception itself goes to the log, once. The middleware never brings client
/// aborts here, and a response that has already started cannot be replaced (the middleware rethrows, and the
/// connection is reset).
/// </summary>
internal sealed partial class GatewayExceptionHandler(ILogger<GatewayExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        UnexpectedError(logger, exception, httpContext.Request.Path);
        await new GatewayError(StatusCodes.Status500InternalServerError, "Internal error; see the gateway log.", "server_error", "internal_error").WriteAsync(httpContext);
        return true;
    }

    // The path only: a query string can carry a key or a prompt.
    [LoggerMessage(EventId = 710, EventName = "UnexpectedError", Level = LogLevel.Error, Message = "Unexpected error serving {Path}")]
    private static partial void UnexpectedError(ILogger logger, Exception exception, string path);
}
