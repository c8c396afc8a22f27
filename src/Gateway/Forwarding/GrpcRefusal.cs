using System.Globalization;
using System.Text;
using GpuFleet.Contracts;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// How the gateway refuses a gRPC call itself, before forwarding it (401, 429, overload): a trailers-only response
/// (HTTP 200 and one HEADERS frame carrying <c>grpc-status</c>), which every gRPC client reads as the call's status.
/// </summary>
internal static class GrpcRefusal
{
    private const string ContentType = "application/grpc";
    private const string StatusHeader = "grpc-status";
    private const string MessageHeader = "grpc-message";

    /// <summary>True when the request is a gRPC call (content type application/grpc, optionally +proto or with parameters).</summary>
    public static bool IsGrpc(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var contentType = request.ContentType;
        if (string.IsNullOrEmpty(contentType) || !contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var rest = contentType.AsSpan(ContentType.Length);
        return rest.IsEmpty || rest[0] is ';' or '+';
    }

    /// <summary>
    /// True when the response already carries its gRPC status: in the headers (a trailers-only answer, such as a worker's
    /// UNIMPLEMENTED) or in the trailers. Such a call has ended at the server, whatever happened to the request body.
    /// </summary>
    public static bool HasStatus(HttpResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        return response.Headers.ContainsKey(StatusHeader)
            || response.HttpContext.Features.Get<IHttpResponseTrailersFeature>()?.Trailers.ContainsKey(StatusHeader) == true;
    }

    /// <summary>
    /// Repeats a status that travelled in the headers (trailers-only) as trailers when those headers have already gone out
    /// on their own: the stream then ends with a DATA frame, and a client looks for the status in trailers only.
    /// </summary>
    public static void CopyHeaderStatusToTrailers(HttpResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        var trailers = response.HttpContext.Features.Get<IHttpResponseTrailersFeature>()?.Trailers;
        if (!response.HasStarted || trailers is null || trailers.IsReadOnly || trailers.ContainsKey(StatusHeader))
        {
            return;
        }

        foreach (var name in (string[])[RetryAfter.GrpcPushbackHeader, StatusHeader, MessageHeader])
        {
            if (response.Headers.TryGetValue(name, out var value))
            {
                trailers[name] = value;
            }
        }
    }

    /// <summary>
    /// The gRPC status for an HTTP status the gateway refuses with (<see cref="GrpcStatusMapping"/>). The gateway's 404 is
    /// a path it does not serve, which for a gRPC call is a method no server implements: UNIMPLEMENTED, as a gRPC server
    /// answers it (the worker's 404, an unknown model, is NOT_FOUND).
    /// </summary>
    public static StatusCode FromHttpStatus(int status) => GrpcStatusMapping.FromHttpStatus(status, notFound: StatusCode.Unimplemented);

    /// <summary>
    /// Answers with a trailers-only response: <c>grpc-status</c>, the percent-encoded <c>grpc-message</c>, and
    /// <c>grpc-retry-pushback-ms</c> when <paramref name="retryAfterSeconds"/> is given. The response must not have started.
    /// </summary>
    public static void Write(HttpContext http, StatusCode status, string message, int? retryAfterSeconds = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        var response = http.Response;
        if (response.HasStarted)
        {
            throw new InvalidOperationException("A gRPC refusal must be the whole response; this one has already started.");
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType;
        var headers = response.Headers;
        if (retryAfterSeconds is { } seconds)
        {
            headers[RetryAfter.GrpcPushbackHeader] = RetryAfter.GrpcPushback(seconds);
        }

        headers[StatusHeader] = ((int)status).ToString(CultureInfo.InvariantCulture);
        if (!string.IsNullOrEmpty(message))
        {
            headers[MessageHeader] = EncodeMessage(message);
        }
    }

    /// <summary>Percent-encodes the UTF-8 bytes outside printable ASCII and '%' itself (PROTOCOL-HTTP2.md, Status-Message).</summary>
    internal static string EncodeMessage(string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        var encoded = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            if (b is >= (byte)' ' and <= (byte)'~' and not (byte)'%')
            {
                encoded.Append((char)b);
            }
            else
            {
                encoded.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return encoded.ToString();
    }
}
