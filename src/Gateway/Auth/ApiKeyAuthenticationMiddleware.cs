using GpuFleet.Contracts;
using GpuFleet.Gateway.Forwarding;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.Auth;

/// <summary>
/// Requires <c>Authorization: Bearer &lt;key&gt;</c> on every request but <c>/healthz</c>, <c>/readyz</c> and
/// <c>/metrics</c> when <see cref="ApiKeyStore.Enabled"/>; passes everything through when no keys file is configured.
/// </summary>
/// <remarks>
/// Every refusal is the same response, byte for byte (401, <c>WWW-Authenticate: Bearer</c>, one OpenAI error), so a
/// caller learns nothing about why; gRPC calls get <c>grpc-status: 16</c> (UNAUTHENTICATED) as a trailers-only
/// response instead. On success the request carries an <see cref="ApiKeyFeature"/> and loses its Authorization
/// header, so the key is never forwarded to a worker. Place it before anything that does work for a caller (the
/// per-key limits, the proxy), which then read the <see cref="ApiKeyFeature"/>.
/// </remarks>
internal sealed class ApiKeyAuthenticationMiddleware(RequestDelegate next, ApiKeyStore store, ILogger<ApiKeyAuthenticationMiddleware> logger)
{
    /// <summary>The one error body of every refusal.</summary>
    public static ReadOnlyMemory<byte> UnauthorizedBody { get; } =
        System.Text.Encoding.UTF8.GetBytes(OpenAiErrorJson.Format(Message, "invalid_request_error", null, "invalid_api_key"));

    private const string Message = "Invalid or missing API key.";

    public Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!store.Enabled || IsOpenPath(context.Request.Path))
        {
            return next(context);
        }

        var failure = Authenticate(context.Request, out var identity);
        if (failure is not null)
        {
            AuthLog.RequestUnauthenticated(logger, context.Request.Method, context.Request.Path.Value ?? "", failure);
            return RefuseAsync(context);
        }

        context.Features.Set(new ApiKeyFeature(identity!));
        context.Request.Headers.Authorization = default;
        return next(context);
    }

    // Probes and scrapes must work without a key: Kubernetes and Prometheus do not carry one. The fleet page shows what
    // /metrics already does, and a browser cannot send a Bearer key.
    private static bool IsOpenPath(PathString path) =>
        path.Equals("/healthz", StringComparison.OrdinalIgnoreCase)
        || path.Equals("/readyz", StringComparison.OrdinalIgnoreCase)
        || path.Equals("/metrics", StringComparison.OrdinalIgnoreCase)
        || path.Equals("/fleet", StringComparison.OrdinalIgnoreCase)
        || path.Equals("/fleet.json", StringComparison.OrdinalIgnoreCase);

    // Null on success, else why (for the debug log only; the client sees the same answer whatever the reason).
    private string? Authenticate(HttpRequest request, out ApiKeyIdentity? identity)
    {
        identity = null;
        var values = request.Headers.Authorization;
        if (values.Count == 0)
        {
            return "no Authorization header";
        }

        if (values.Count > 1)
        {
            return "more than one Authorization header";
        }

        var header = values[0].AsSpan();
        const string scheme = "Bearer";
        // The scheme is case-insensitive (RFC 9110 11.1); the token follows one or more spaces.
        if (header.Length <= scheme.Length || !header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) || header[scheme.Length] != ' ')
        {
            return "not a Bearer credential";
        }

        var token = header[scheme.Length..].Trim(' ');
        if (token.IsEmpty)
        {
            return "empty Bearer credential";
        }

        return store.TryAuthenticate(token, out identity) ? null : "unknown or removed API key";
    }

    private static Task RefuseAsync(HttpContext context)
    {
        var response = context.Response;
        if (GrpcRefusal.IsGrpc(context.Request))
        {
            GrpcRefusal.Write(context, GrpcRefusal.FromHttpStatus(StatusCodes.Status401Unauthorized), Message);
            return Task.CompletedTask;
        }

        response.StatusCode = StatusCodes.Status401Unauthorized;
        response.Headers.WWWAuthenticate = "Bearer";
        response.ContentType = "application/json";
        response.ContentLength = UnauthorizedBody.Length;
        return response.Body.WriteAsync(UnauthorizedBody, context.RequestAborted).AsTask();
    }
}
