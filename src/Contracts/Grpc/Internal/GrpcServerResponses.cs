using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace GpuFleet.Contracts.Grpc.Internal;

/// <summary>Request checks and status responses shared by every gRPC endpoint, the unimplemented catch-all included.</summary>
internal static class GrpcServerResponses
{
    /// <summary>
    /// Checks HTTP/2, content-type, message encoding and grpc-timeout; on failure the response is already written.
    /// </summary>
    public static bool TryAccept(HttpContext http, string method, ILogger logger, out TimeSpan? timeout)
    {
        timeout = null;
        var request = http.Request;
        if (!HttpProtocol.IsHttp2(request.Protocol))
        {
            // gRPC needs HTTP/2 trailers; an HTTP/1.1 client could not read a gRPC status, so answer in plain HTTP.
            GrpcServerLog.RequestRefused(logger, method, "not HTTP/2");
            http.Response.StatusCode = (int)HttpStatusCode.UpgradeRequired;
            http.Response.Headers.Upgrade = "h2c";
            return false;
        }

        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            // 415, not 200: a non-gRPC HTTP/2 client must not mistake the error for success (PROTOCOL-HTTP2.md).
            GrpcServerLog.RequestRefused(logger, method, "content-type is not application/grpc");
            WriteStatus(http, GrpcStatusCode.Internal, "Content-Type is not application/grpc or application/grpc+proto.", null, HttpStatusCode.UnsupportedMediaType);
            return false;
        }

        var encoding = request.Headers[GrpcProtocol.EncodingHeader];
        if (!StringValues.IsNullOrEmpty(encoding) && !string.Equals(encoding.ToString(), GrpcProtocol.IdentityEncoding, StringComparison.Ordinal))
        {
            // We never advertise compression, so a compressing client ignored grpc-accept-encoding; say what we take.
            GrpcServerLog.RequestRefused(logger, method, "compressed request");
            http.Response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.IdentityEncoding;
            WriteStatus(http, GrpcStatusCode.Unimplemented, "Message encodings other than identity are not supported.", null);
            return false;
        }

        var timeoutHeader = request.Headers[GrpcProtocol.TimeoutHeader];
        if (!StringValues.IsNullOrEmpty(timeoutHeader))
        {
            if (!GrpcProtocol.TryParseTimeout(timeoutHeader.ToString(), out var parsed))
            {
                GrpcServerLog.RequestRefused(logger, method, "malformed grpc-timeout");
                WriteStatus(http, GrpcStatusCode.Internal, "Malformed grpc-timeout header.", null);
                return false;
            }

            timeout = parsed <= GrpcProtocol.MaxTimerDelay ? parsed : null;
        }

        return true;
    }

    /// <summary>
    /// Ends the call: grpc-status and grpc-message as trailers after messages, or, when nothing was written yet, as
    /// headers of a trailers-only response (a single HEADERS frame with END_STREAM, which Kestrel sends when the
    /// handler returns without a body).
    /// </summary>
    public static void WriteStatus(
        HttpContext http, GrpcStatusCode status, string? message, IHeaderDictionary? extraTrailers, HttpStatusCode httpStatus = HttpStatusCode.OK)
    {
        var response = http.Response;
        var code = GrpcProtocol.FormatStatus(status);
        var encodedMessage = string.IsNullOrEmpty(message) ? null : GrpcProtocol.EncodeMessage(message);
        if (!response.HasStarted)
        {
            response.StatusCode = (int)httpStatus;
            response.ContentType = GrpcProtocol.ContentType;
            var headers = response.Headers;
            if (extraTrailers is not null)
            {
                foreach (var (name, value) in extraTrailers)
                {
                    headers.Append(name, value);
                }
            }

            headers[GrpcProtocol.StatusHeader] = code;
            if (encodedMessage is not null)
            {
                headers[GrpcProtocol.MessageHeader] = encodedMessage;
            }

            return;
        }

        if (extraTrailers is not null)
        {
            foreach (var (name, value) in extraTrailers)
            {
                response.AppendTrailer(name, value);
            }
        }

        response.AppendTrailer(GrpcProtocol.StatusHeader, code);
        if (encodedMessage is not null)
        {
            response.AppendTrailer(GrpcProtocol.MessageHeader, encodedMessage);
        }
    }

    /// <summary>Writes the response headers of a call about to send messages.</summary>
    public static void PrepareMessageResponse(HttpResponse response)
    {
        response.StatusCode = (int)HttpStatusCode.OK;
        response.ContentType = GrpcProtocol.ContentType;
    }
}
