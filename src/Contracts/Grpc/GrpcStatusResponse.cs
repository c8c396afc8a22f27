using System.Globalization;
using GpuFleet.Contracts.Grpc.Internal;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Contracts.Grpc;

/// <summary>
/// For HTTP middleware that must answer a gRPC call itself (a proxy refusing it): recognises gRPC requests and
/// ends them with a status, through the same writer the gRPC server uses.
/// </summary>
public static class GrpcStatusResponse
{
    /// <summary>True when the request is a gRPC call (content type application/grpc, optionally +proto or with parameters).</summary>
    public static bool IsGrpc(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return GrpcProtocol.IsGrpcContentType(request.ContentType);
    }

    /// <summary>
    /// Answers with a trailers-only response: HTTP 200, <c>grpc-status</c>, the percent-encoded <c>grpc-message</c>, and
    /// <c>grpc-retry-pushback-ms</c> when <paramref name="retryPushback"/> is given. The response must not have started.
    /// </summary>
    public static void Write(HttpContext http, GrpcStatusCode status, string message, TimeSpan? retryPushback = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        HeaderDictionary? extra = null;
        if (retryPushback is { } pushback)
        {
            extra = new HeaderDictionary { ["grpc-retry-pushback-ms"] = ((long)pushback.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) };
        }

        GrpcServerResponses.WriteStatus(http, status, message, extra);
    }
}
